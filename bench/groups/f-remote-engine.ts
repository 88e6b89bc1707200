/** F. A remote engine (scripts/engines/remote-engine.sh) beside the local one. */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { HOME, NAME, PORT, ROOT, RUNS, must, record, sample, settled, suspendResume, moduleCopy, editModule } from '../lib.js';
import type { BenchCtx, BenchGroup } from '../group.js';

interface SideFigures {
  first: number;
  boot: number;
  resume: number;
  exec: number;
  /** Module edit → rebuilt → loaded, when a kernel is built. */
  edit?: number;
}

/**
 * Group F, one side: the same steps against the engine of `side` (the same m5dev home: the remote
 * engine's kernel build is this machine's, copied in by `kernel build`).
 */
async function engineSide(image: { url: string; sha256: string }, side: NodeJS.ProcessEnv, kernel: string | undefined): Promise<SideFigures> {
  await must(['destroy', '--name', NAME], side).catch(() => undefined);
  const first = (await must(['up', '--name', NAME, '--image-url', image.url, '--image-sha256', image.sha256, '--ssh-port', String(PORT)], side)).ms;
  const boot = await sample(RUNS, async () => {
    await must(['down', '--name', NAME], side);
    return (await must(['up', '--name', NAME, '--ssh-port', String(PORT)], side)).ms;
  });
  await settled(side);
  await must(['exec', '--name', NAME, '--', 'true'], side);
  const exec = await sample(10, async () => (await must(['exec', '--name', NAME, '--', 'true'], side)).ms);
  const { resume } = await suspendResume(side);
  let edit: number | undefined;
  if (kernel) {
    // The tarball is in the home's blob store already, so no URL is fetched.
    const rec = JSON.parse(readFileSync(join(HOME, 'kernels', `${kernel}.latest.json`), 'utf8')) as { src: string };
    await must(['kernel', 'build', '--version', kernel, '--kernel-url', 'file:///nonexistent', '--kernel-sha256', rec.src.split('/').pop()!], side);
    await must(['down', '--name', NAME], side);
    await must(['up', '--name', NAME, '--kernel', kernel, '--ssh-port', String(PORT)], side);
    const src = moduleCopy('m5dev-bench-module-');
    await must(['module', 'load', '--name', NAME, '--src', src], side);
    edit = await sample(RUNS, async () => {
      editModule(src);
      return (await must(['module', 'load', '--name', NAME, '--src', src], side)).ms;
    });
    rmSync(src, { recursive: true, force: true });
  }
  await must(['destroy', '--name', NAME], side);
  return { first, boot, resume, exec, edit };
}

async function remoteBesideLocal(image: { url: string; sha256: string }, kernel: string | undefined): Promise<void> {
  const tag = JSON.parse((await must(['--json', 'image', 'build'])).stdout).tag as string;
  const start = spawnSync('bash', [join(ROOT, 'scripts', 'engines', 'remote-engine.sh'), 'start', tag], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (start.status !== 0) throw new Error('scripts/engines/remote-engine.sh failed');
  const local = await engineSide(image, {}, kernel);
  const remote = await engineSide(image, { DOCKER_HOST: start.stdout.trim() }, kernel);
  const vs = (ms: number) => ({ label: 'local engine', ms });
  record('remote engine', 'first up → SSH (artefacts made; on the remote, the cloud image copied in and verified there)', remote.first, vs(local.first));
  record('remote engine', 'up → SSH, instance stopped (raw disk, UEFI)', remote.boot, vs(local.boot));
  record('remote engine', 'up → SSH, resuming a suspended guest', remote.resume, vs(local.resume));
  record('remote engine', 'exec true, reused SSH connection (remote: through the Engine API relay)', remote.exec, vs(local.exec));
  if (remote.edit !== undefined && local.edit !== undefined) record('remote engine', 'module edit → rebuilt → loaded (direct-boot guest)', remote.edit, vs(local.edit));
}

export const remoteEngineGroup: BenchGroup = {
  id: 'F',
  title: 'a remote engine (own filesystem and network, tcp://) beside the local one, same fixture and toolchain: first up, up → SSH from stopped, resume, exec true, the module loop',
  needs: [],
  guest: 'own',
  run: (ctx: BenchCtx) => remoteBesideLocal(ctx.image, ctx.kernel),
};
