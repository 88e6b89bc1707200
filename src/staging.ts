/** Cache directories and written files appear whole or not at all. */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { onCleanup } from './cleanup.js';

/**
 * `fill` writes into `<final>.partial`; on success it is renamed to `final` (replacing any stale
 * one). On failure or Ctrl-C the partial directory is removed, so no half tree is ever cached.
 */
export async function publishDir<T>(final: string, label: string, fill: (partial: string) => Promise<T>): Promise<T> {
  const partial = `${final}.partial`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  const undo = onCleanup(label, () => rmSync(partial, { recursive: true, force: true }));
  try {
    const result = await fill(partial);
    rmSync(final, { recursive: true, force: true });
    renameSync(partial, final);
    return result;
  } finally {
    rmSync(partial, { recursive: true, force: true });
    undo();
  }
}

/**
 * A file written whole: into a temporary file of its own beside it (created exclusively: never
 * through a link that stands there), then renamed over `file`. A failure leaves `file` as it was.
 */
export function writeWhole(file: string, data: string | Buffer): void {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    writeFileSync(tmp, data, { flag: 'wx' });
    renameSync(tmp, file);
  } finally {
    rmSync(tmp, { force: true });
  }
}
