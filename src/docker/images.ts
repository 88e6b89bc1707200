/** Image resource client: inspect, ensure a base image, build from a context with strict error checking. */
import type Docker from 'dockerode';
import { ImageBuildError, M5devError, ExitCode, tail } from '../errors.js';
import { isNotFound } from './client.js';
import { packContext } from './build-context.js';
import { MESSAGES } from '../messages.js';
import { baseLabels } from './labels.js';
import { getFiles } from './archive.js';
import { withIdleContainer } from './containers.js';

export async function imageId(docker: Docker, ref: string): Promise<string | undefined> {
  try {
    const info = await docker.getImage(ref).inspect();
    return info.Id;
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

/** The base image must exist locally; try a pull, else explain how to bootstrap it without a registry. */
export async function ensureBaseImage(docker: Docker, ref: string): Promise<string> {
  const present = await imageId(docker, ref);
  if (present) return present;
  try {
    const stream = await docker.pull(ref);
    await new Promise<void>((resolve, reject) =>
      docker.modem.followProgress(stream, (err: Error | null, events: BuildEvent[]) => {
        const bad = err ?? firstError(events);
        if (bad) reject(bad instanceof Error ? bad : new Error(bad));
        else resolve();
      }),
    );
  } catch (e) {
    throw new M5devError(
      `Base image ${ref} is not present and could not be pulled (${(e as Error).message.split('\n')[0]})`,
      ExitCode.imageBuildFailed,
      MESSAGES.bootstrapBaseHint(ref),
    );
  }
  const id = await imageId(docker, ref);
  if (!id) throw new M5devError(`Base image ${ref} still missing after pull`, ExitCode.imageBuildFailed, MESSAGES.bootstrapBaseHint(ref));
  return id;
}

export interface BuildEvent {
  stream?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string; code?: number };
  aux?: { ID?: string };
}

function firstError(events: BuildEvent[] | undefined): string | undefined {
  for (const ev of events ?? []) {
    if (ev.error || ev.errorDetail) return ev.error ?? ev.errorDetail?.message ?? 'unknown build error';
  }
  return undefined;
}

export interface BuildOptions {
  contextDir: string;
  tag: string;
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  onLine?: (line: string) => void;
  /** A failure the build's own log explains better than the engine's "returned a non-zero code". */
  explain?: (log: string) => { message: string; hint: string } | undefined;
}

/**
 * Build and tag an image. docker-modem reports success even when the daemon streamed an error,
 * so every progress event is checked for `error`/`errorDetail`; the failure carries the log tail.
 */
export async function buildImage(docker: Docker, opts: BuildOptions): Promise<string> {
  const log: string[] = [];
  let failure: string | undefined;
  const stream = await docker.buildImage(await packContext(opts.contextDir), {
    t: opts.tag,
    buildargs: opts.buildArgs,
    labels: opts.labels,
    rm: true,
    forcerm: true,
  });
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null) => (err ? reject(err) : resolve()),
      (ev: BuildEvent) => {
        if (ev.error || ev.errorDetail) failure ??= ev.error ?? ev.errorDetail?.message ?? 'unknown build error';
        const text = ev.stream ?? ev.status;
        if (text) {
          for (const line of text.split('\n')) {
            if (line.trim() === '') continue;
            log.push(line);
            if (log.length > 400) log.shift();
            opts.onLine?.(line);
          }
        }
      },
    );
  }).catch((e: unknown) => {
    failure ??= (e as Error).message;
  });
  if (failure) {
    const why = opts.explain?.(log.join('\n'));
    if (why) throw new ImageBuildError(`Image build failed: ${why.message}`, tail(log.join('\n'), 12), why.hint);
    throw new ImageBuildError(`Image build failed: ${failure.trim()}`, tail(log.join('\n'), 25));
  }
  const id = await imageId(docker, opts.tag);
  if (!id) throw new ImageBuildError(`Image build finished but ${opts.tag} does not exist`, tail(log.join('\n'), 25));
  return id;
}

export async function removeImage(docker: Docker, ref: string): Promise<void> {
  try {
    await docker.getImage(ref).remove({ force: true });
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
}

/** The text of a file in an image ('' when it has none), read from a created, never started container. */
export async function readImageFile(docker: Docker, ref: string, path: string): Promise<string> {
  return withIdleContainer(docker, { image: ref, cmd: ['true'], labels: baseLabels('tool'), mounts: [] }, async (id) => {
    const files = await getFiles(docker, id, path).catch(() => new Map<string, Buffer>());
    return [...files.values()].map((b) => b.toString('utf8')).join('\n');
  });
}

/** An image's labels. */
export async function imageLabels(docker: Docker, ref: string): Promise<Record<string, string>> {
  return (await docker.getImage(ref).inspect()).Config.Labels ?? {};
}
