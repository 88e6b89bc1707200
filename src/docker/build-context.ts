/** The toolchain image's build context: a deterministic file list, its content hash, and a tar-fs stream. */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';

/** All regular files below `dir`, as sorted POSIX relative paths. */
export function listContext(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const full = join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) out.push(relative(dir, full).split(sep).join('/'));
    }
  };
  walk(dir);
  return out.sort();
}

/**
 * Hash of everything that decides the image: each file's path, mode (executable bit) and content,
 * plus the build args and the base image's ID. Same inputs give the same hash on any host.
 */
export function contextHash(dir: string, extra: Record<string, string>): string {
  return hashFiles(dir, listContext(dir), extra);
}

/** Hash of the given files of `dir` (paths, executable bits, contents) plus extra key/values. */
export function hashFiles(dir: string, files: string[], extra: Record<string, string> = {}): string {
  const h = createHash('sha256');
  for (const rel of files) {
    const full = join(dir, ...rel.split('/'));
    const exec = (statSync(full).mode & 0o111) !== 0;
    h.update(`file\0${rel}\0${exec ? 'x' : '-'}\0`);
    h.update(readFileSync(full));
    h.update('\0');
  }
  for (const key of Object.keys(extra).sort()) h.update(`arg\0${key}\0${extra[key]}\0`);
  return h.digest('hex');
}

export async function packContext(dir: string): Promise<Readable> {
  const { pack } = await import('tar-fs'); // loaded on first use
  return pack(dir) as unknown as Readable;
}

/** The Dockerfile line that starts the stages after the toolchain's own (the m5ops plugin's build). */
const LATER_STAGES = /^FROM toolchain AS /m;

/**
 * Hash of what decides the toolchain stage alone (what kernel and module builds run in): the
 * Dockerfile up to its first later stage, m5dev-tools/ (the lock included), the build args and the
 * base's ID; not the m5ops plugin's sources nor its stage. A change to the plugin rebuilds the image
 * but keeps every kernel and module build.
 */
export function toolchainStageHash(dir: string, extra: Record<string, string>): string {
  const dockerfile = readFileSync(join(dir, 'Dockerfile'), 'utf8');
  const cut = dockerfile.search(LATER_STAGES);
  const files = listContext(dir).filter((f) => f !== 'Dockerfile' && !f.startsWith('m5ops/'));
  return hashFiles(dir, files, { ...extra, DOCKERFILE_TOOLCHAIN_STAGE: cut < 0 ? dockerfile : dockerfile.slice(0, cut) });
}
