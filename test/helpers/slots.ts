/**
 * Numbered slots of a machine-wide resource (the remote engine's name and port, the tests' registry
 * port), so that two test runs at once on one machine never take the same one. A slot is a
 * directory made atomically under /tmp/m5dev-test-slots, holding its holder's PID; it is given back
 * when the holder exits, and a slot whose holder is dead is taken over (by rename, so two takers
 * cannot both win). Slot 0 is the default a single run has always used (its warm state is kept).
 */
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = '/tmp/m5dev-test-slots';
const held = new Map<string, number>();
/** A slot directory younger than this with no PID yet is being taken now (its taker is between mkdir and write). */
const YOUNG_MS = 10_000;

function holderAlive(dir: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
  } catch {
    try {
      return Date.now() - statSync(dir).mtimeMs < YOUNG_MS;
    } catch {
      return false; // gone meanwhile: free
    }
  }
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** This process's slot of `kind` (the same one on every call), 0 … max-1; throws when all are held. `root`: the unit test's. */
export function holdSlot(kind: string, max = 8, root = ROOT): number {
  const key = join(root, kind);
  const mine = held.get(key);
  if (mine !== undefined) return mine;
  mkdirSync(root, { recursive: true });
  for (let n = 0; n < max; n++) {
    const dir = join(root, `${kind}-${n}`);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        mkdirSync(dir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        if (holderAlive(dir)) break;
        // A dead holder's slot: moved aside by one taker only, then made afresh.
        const aside = `${dir}.stale-${process.pid}`;
        try {
          renameSync(dir, aside);
          rmSync(aside, { recursive: true, force: true });
        } catch {
          // another taker moved it first
        }
        continue;
      }
      writeFileSync(join(dir, 'pid'), String(process.pid));
      held.set(key, n);
      process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
      return n;
    }
  }
  throw new Error(`all ${max} test slots of ${kind} are held by running processes (${root})`);
}
