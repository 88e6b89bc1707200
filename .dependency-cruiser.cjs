/**
 * The layers, as the build checks them (`make lint`): no cycles; listr2 and commander only in cli/;
 * dockerode only in docker/ (the layers above hold its client as docker/client.ts's DockerClient
 * and pass it back to docker/'s functions); nothing below the workflows imports them; docker/ and
 * download/ import no layer above them, and m5ops/, module/ and gem5/ none at all. The layers above
 * reach the engine's images and containers through Engine.images and Engine.containers (its
 * client is private). Not yet a rule: engine/,
 * vm/ and vmhost/ still import each other's types (issue 37).
 */
module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'a cycle makes two modules one', from: {}, to: { circular: true } },
    { name: 'ui-only-in-cli', severity: 'error', comment: 'workflows report progress through a Reporter; only cli/ draws it', from: { pathNot: '^src/cli/' }, to: { path: 'node_modules/(listr2|commander)/' } },
    { name: 'dockerode-only-in-docker', severity: 'error', comment: 'the Engine API is docker/\'s', from: { path: '^src/', pathNot: '^src/docker/' }, to: { path: 'node_modules/(dockerode|docker-modem)/' } },
    { name: 'workflows-not-from-below', severity: 'error', comment: 'nothing under the workflows imports them', from: { path: '^src/(vm|kernel|module|m5ops|gem5|vmhost|engine|docker|ssh|download)/' }, to: { path: '^src/(workflows|cli)/' } },
    { name: 'cli-from-cli-only', severity: 'error', from: { path: '^src/', pathNot: '^src/cli/' }, to: { path: '^src/cli/' } },
    { name: 'docker-is-a-bottom-layer', severity: 'error', comment: 'docker/ is the Engine API: it knows nothing of engines as places, VMs, kernels or guests', from: { path: '^src/docker/' }, to: { path: '^src/(engine|vmhost|vm|kernel|module|m5ops|ssh|workflows|cli)/' } },
    { name: 'download-is-a-bottom-layer', severity: 'error', from: { path: '^src/download/' }, to: { path: '^src/(docker|engine|vmhost|vm|kernel|module|m5ops|ssh|workflows|cli)/' } },
    { name: 'pure-rules-stay-pure', severity: 'error', comment: 'm5ops/, module/ and gem5/ are pure rules and formats', from: { path: '^src/(m5ops|module|gem5)/' }, to: { path: '^src/(docker|engine|vmhost|vm|kernel|ssh|download|workflows|cli)/' } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^dist/' },
  },
};
