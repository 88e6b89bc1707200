/** One Docker connection for the process; `connectDocker` proves the engine answers. */
import type Docker from 'dockerode';
import { DockerUnavailableError } from '../errors.js';
import { onCleanup } from '../cleanup.js';
import { LABELS, SESSION_ID } from './labels.js';

let cached: Docker | undefined;

export async function connectDocker(): Promise<Docker> {
  if (cached) return cached;
  // Loaded on first use: commands that never talk to the engine start faster.
  const { default: DockerClass } = await import('dockerode');
  const docker = new DockerClass(); // honours DOCKER_HOST, else /var/run/docker.sock
  try {
    await withTimeout(docker.ping(), 5000);
  } catch (e) {
    throw new DockerUnavailableError(describe(e));
  }
  cached = docker;
  // Registered first, so it runs last: whatever this process created and still exists after the
  // other cleanups (e.g. a create call still in flight when Ctrl-C came) is removed too.
  onCleanup('sweep this session\'s containers', () => sweepSession(docker));
  return docker;
}

function describe(e: unknown): string {
  const err = e as NodeJS.ErrnoException & { address?: string };
  if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
    return `${err.code} at ${err.address ?? process.env.DOCKER_HOST ?? '/var/run/docker.sock'}`;
  }
  if (err.code === 'EACCES') return 'permission denied on the Docker socket (add yourself to the docker group)';
  return err.message ?? String(e);
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => { clearTimeout(t); resolve(v); },
      (e: unknown) => { clearTimeout(t); reject(e instanceof Error ? e : new Error(String(e))); },
    );
  });
}

export function isNotFound(e: unknown): boolean {
  return (e as { statusCode?: number }).statusCode === 404;
}

async function sweepSession(docker: Docker): Promise<void> {
  await new Promise((r) => setTimeout(r, 300)); // let in-flight create calls land
  const list = await docker.listContainers({ all: true, filters: { label: [`${LABELS.session}=${SESSION_ID}`] } });
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
}
