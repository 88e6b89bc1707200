/** Engines other than the local one, started by the project's own scripts (see scripts/engines/). */
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import Docker from 'dockerode';
import { ROOT, cli } from './cli.js';
import { LABELS } from '../../src/docker/labels.js';
import { TEST_LABEL } from './docker.js';
import { isPoolExhausted } from '../../src/errors.js';
import { fixture, type Fixture } from './fixture.js';
import { holdSlot } from './slots.js';
import { serveDir, type FileServer } from './http-server.js';

/** What the engine tests boot: the fixture served on loopback, and this checkout's toolchain image. */
export interface EngineFixture {
  fx: Fixture;
  server: FileServer;
  imageUrl: string;
  toolchain: string;
}

export async function engineFixture(): Promise<EngineFixture> {
  const fx = fixture();
  const server = await serveDir(fx.dir);
  return { fx, server, imageUrl: `${server.url}/${fx.image}`, toolchain: await localToolchainTag() };
}

/** The toolchain image of this checkout, built (or found) on the local engine. */
export async function localToolchainTag(): Promise<string> {
  const res = await cli(['--json', 'image', 'build'], { DOCKER_HOST: '' });
  if (res.code !== 0) throw new Error(`image build failed: ${res.stderr}`);
  return (JSON.parse(res.stdout) as { tag: string }).tag;
}

/**
 * This run's remote engine: slot 0 is remote-engine.sh's default name and port, a run beside it
 * (another slot) gets a container, data volume and port of its own.
 */
function remoteEngineEnv(): NodeJS.ProcessEnv {
  const slot = holdSlot('remote-engine');
  return slot === 0 ? process.env : { ...process.env, M5DEV_REMOTE_NAME: `m5dev-test-remote-engine-${slot}`, M5DEV_REMOTE_PORT: String(23751 + slot) };
}

/** A Docker engine on its own filesystem and network, at tcp://127.0.0.1:PORT, with `images` copied in. */
export function startRemoteEngine(images: string[]): { host: string; docker: Docker } {
  const host = execFileSync('bash', [join(ROOT, 'scripts', 'engines', 'remote-engine.sh'), 'start', ...images], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: remoteEngineEnv() }).trim();
  const url = new URL(host.replace(/^tcp:/, 'http:'));
  return { host, docker: new Docker({ host: url.hostname, port: Number(url.port) }) };
}

/** Stop the remote engine's container (its data volume stays: the next start finds everything again). */
export function stopRemoteEngine(): void {
  execFileSync('bash', [join(ROOT, 'scripts', 'engines', 'remote-engine.sh'), 'stop'], { stdio: ['ignore', 'ignore', 'inherit'], env: remoteEngineEnv() });
}

export async function volumesOfHome(docker: Docker, home: string): Promise<string[]> {
  const { Volumes } = await docker.listVolumes({ filters: { label: [`${LABELS.home}=${home}`] } });
  return (Volumes ?? []).map((v) => v.Name).sort();
}

export async function containersOn(docker: Docker, home: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${LABELS.home}=${home}`] } });
}

/**
 * Take every address pool the engine has left, with bridge networks of the test's own (labelled
 * TEST_LABEL); returns their removal. At most `max`: an engine with more pools than that is not full.
 */
export async function fillAddressPools(docker: Docker, max = 64): Promise<() => Promise<void>> {
  const made: string[] = [];
  const release = async () => {
    for (const id of made.splice(0)) await docker.getNetwork(id).remove().catch(() => undefined);
  };
  try {
    for (let i = 0; i < max; i++) {
      const n = await docker.createNetwork({ Name: `m5dev-test-fill-${process.pid}-${i}`, Driver: 'bridge', Labels: { [TEST_LABEL]: 'pool-fill' } }).catch((e: Error) => e);
      if (n instanceof Error) {
        if (isPoolExhausted(n.message)) return release; // the answer m5dev must recognise too
        throw n;
      }
      made.push(n.id);
    }
    throw new Error(`the engine still had address pools after ${max} networks`);
  } catch (e) {
    await release();
    throw e;
  }
}

/** The first of the registry slots' ports (podman-engine.sh trusts plain HTTP from each of them). */
export const REGISTRY_PORTS = { first: 25124, count: 8 };

/**
 * The tests' registry on loopback (Debian's docker-registry), on this run's slot's port (or
 * M5DEV_TEST_REGISTRY's): HOST:PORT. Two runs at once get two ports; Podman trusts them all.
 */
export function startRegistry(dir: string): Promise<string> {
  const port = process.env.M5DEV_TEST_REGISTRY?.split(':')[1] ?? String(REGISTRY_PORTS.first + holdSlot('registry', REGISTRY_PORTS.count));
  const script = join(ROOT, 'scripts', 'engines', 'registry.sh');
  const t0 = Date.now();
  const res = spawnSync('bash', [script, 'start', dir, port], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (res.status !== 0) {
    const how = res.error ? `could not run (${res.error.message})` : res.signal ? `was killed by ${res.signal}` : `exited ${res.status}`;
    return Promise.reject(new Error(`registry.sh start ${dir} ${port} ${how} after ${Date.now() - t0} ms; its stderr:\n${res.stderr || '(nothing)'}`));
  }
  return Promise.resolve(res.stdout.trim());
}

export function stopRegistry(dir: string): void {
  execFileSync('bash', [join(ROOT, 'scripts', 'engines', 'registry.sh'), 'stop', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
}
