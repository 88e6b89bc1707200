/**
 * The toolchain image between machines, always verified: `save` to an archive (written whole, then
 * renamed, with its SHA-256), `load` from one (its SHA-256 checked before a byte reaches the
 * engine, when given), `push` to a registry (reporting the digest it stored), `pull` by digest
 * only (the engine checks the content against it). A toolchain image's tag must match the content
 * hash in its label, so a retagged image is never taken for another context's toolchain.
 */
import type Docker from 'dockerode';
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, fsyncSync, openSync, renameSync, rmSync } from 'node:fs';
import { ChecksumMismatchError, ImageBuildError, UsageError } from '../errors.js';
import { onCleanup } from '../cleanup.js';
import { sha256File } from '../download/store.js';
import { LABELS } from './labels.js';
import { toolchainTag, TOOLCHAIN_REPO } from './toolchain-tag.js';
import type { BuildEvent } from './images.js';

export interface Progress {
  bytes: number;
  total?: number;
}

/** Write `ref` as a `docker save` archive to `file`; returns the archive's SHA-256 and size. */
export async function saveImage(docker: Docker, ref: string, file: string, onProgress?: (p: Progress) => void): Promise<{ sha256: string; bytes: number }> {
  const info = await docker.getImage(ref).inspect();
  const partial = `${file}.partial`;
  const undo = onCleanup(`partial archive ${partial}`, () => rmSync(partial, { force: true }));
  try {
    const stream = (await docker.getImage(ref).get());
    const hash = createHash('sha256');
    let bytes = 0;
    const out = createWriteStream(partial);
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (c: Buffer) => {
        hash.update(c);
        bytes += c.length;
        onProgress?.({ bytes, total: info.Size });
      });
      stream.once('error', reject);
      out.once('error', reject);
      out.once('finish', () => resolve());
      stream.pipe(out);
    });
    const fd = openSync(partial, 'r');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(partial, file);
    return { sha256: hash.digest('hex'), bytes };
  } catch (e) {
    rmSync(partial, { force: true });
    throw e;
  } finally {
    undo();
  }
}

/** Load a `docker save` archive; with `sha256`, the archive is verified first. Returns the loaded tags. */
export async function loadImage(docker: Docker, file: string, sha256?: string): Promise<string[]> {
  if (sha256) {
    const actual = await sha256File(file);
    if (actual !== sha256) throw new ChecksumMismatchError(file, sha256, actual, 'Nothing was loaded: this is not the archive `m5dev image save` wrote (damaged or replaced in transit). Copy it again.');
  }
  const res = (await docker.loadImage(createReadStream(file), { quiet: true }));
  const events = await follow(docker, res);
  const failed = events.find((e) => e.error || e.errorDetail);
  if (failed) throw new ImageBuildError(`Loading ${file} failed: ${failed.error ?? failed.errorDetail?.message}`, '', 'Is it an archive written by `m5dev image save` (or `docker save`)? Compare its SHA-256 with the one save printed.');
  const tags = events.flatMap((e) => /Loaded image: (\S+)/.exec(e.stream ?? '')?.[1] ?? []);
  for (const tag of tags.filter((t) => t.startsWith(`${TOOLCHAIN_REPO}:`))) await checkToolchainTag(docker, tag);
  return tags;
}

/** Tag `localRef` as `ref` and push it; returns the digest the registry stored (`repo@sha256:…`). */
export async function pushImage(docker: Docker, localRef: string, ref: string): Promise<string> {
  const { repo, tag } = splitRef(ref);
  await docker.getImage(localRef).tag({ repo, tag });
  const events = await follow(docker, (await docker.getImage(ref).push({ authconfig: {} })));
  const failed = events.find((e) => e.error || e.errorDetail);
  if (failed) throw new ImageBuildError(`Pushing ${ref} failed: ${failed.error ?? failed.errorDetail?.message}`, '', 'Check the registry address and your login (`docker login`).');
  const digest = events.map((e) => (e.aux as { Digest?: string } | undefined)?.Digest).find((d) => d?.startsWith('sha256:'));
  if (!digest) throw new ImageBuildError(`Pushing ${ref} reported no digest`, '');
  return `${repo}@${digest}`;
}

/** Pull `repo@sha256:…` (by digest only) and give it its toolchain tag; returns that tag. */
export async function pullImage(docker: Docker, ref: string): Promise<{ tag: string; id: string }> {
  if (!/@sha256:[0-9a-f]{64}$/.test(ref)) throw new UsageError(`${ref} is not pinned by digest`, 'Pull the exact image: REF@sha256:… (as `m5dev image push` printed it).');
  const events = await follow(docker, (await docker.pull(ref)));
  const failed = events.find((e) => e.error || e.errorDetail);
  if (failed) throw new ImageBuildError(`Pulling ${ref} failed: ${failed.error ?? failed.errorDetail?.message}`, '', 'Check the registry address, the digest and your login (`docker login`).');
  const info = await docker.getImage(ref).inspect();
  if (!(info.RepoDigests ?? []).includes(ref)) throw new ImageBuildError(`The engine pulled ${ref} but lists it as ${(info.RepoDigests ?? []).join(', ') || 'no digest'}`, '');
  const hash = info.Config.Labels?.[LABELS.contextHash];
  if (!hash) throw new UsageError(`${ref} is not an m5dev toolchain image (no ${LABELS.contextHash} label)`);
  const tag = toolchainTag(hash);
  const { repo, tag: t } = splitRef(tag);
  await docker.getImage(ref).tag({ repo, tag: t });
  return { tag, id: info.Id };
}

/** A toolchain tag names its content: the image's context-hash label must give the same tag. */
async function checkToolchainTag(docker: Docker, tag: string): Promise<void> {
  const info = await docker.getImage(tag).inspect();
  const hash = info.Config.Labels?.[LABELS.contextHash];
  if (!hash || toolchainTag(hash) !== tag) {
    throw new ImageBuildError(`${tag} does not hold the toolchain its tag names (label ${hash ?? 'missing'})`, '', `Remove it with \`docker rmi ${tag}\` and load or build the right one.`);
  }
}

export function splitRef(ref: string): { repo: string; tag: string } {
  const at = ref.lastIndexOf(':');
  return at > ref.lastIndexOf('/') ? { repo: ref.slice(0, at), tag: ref.slice(at + 1) } : { repo: ref, tag: 'latest' };
}

async function follow(docker: Docker, stream: NodeJS.ReadableStream): Promise<BuildEvent[]> {
  return new Promise((resolve, reject) => docker.modem.followProgress(stream, (err: Error | null, events: BuildEvent[]) => (err ? reject(err) : resolve(events ?? []))));
}
