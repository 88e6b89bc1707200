/** Cache directories appear whole or not at all. */
import { mkdirSync, renameSync, rmSync } from 'node:fs';
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
