/**
 * Inter-process locks on named resources (an instance, a kernel build, a download) under
 * $M5DEV_HOME/locks, with proper-lockfile: an atomic mkdir, its mtime refreshed while held. A lock
 * whose holder died without releasing it (kill -9, power loss) is stale after STALE_MS and taken
 * over. Beside each lock, who holds it, so a waiter can say what it waits for.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { BusyError, InterruptedError } from './errors.js';
import { isInterrupting, onCleanup } from './cleanup.js';

export const STALE_MS = 10_000;
const POLL_MS = 300;

export interface LockOptions {
  /** false: fail at once with BusyError instead of waiting (`--no-wait`). */
  wait: boolean;
  /** What the lock guards, for messages ("instance default"). */
  what: string;
  /** Called once when the lock is held by another process and we start waiting. */
  onWait?: (holder: string) => void;
}

interface Holder {
  pid: number;
  command: string;
  since: string;
}

/** Lock file names: one flat directory, names made safe. */
function lockPath(home: string, resource: string): string {
  return join(home, 'locks', resource.replace(/[^A-Za-z0-9._-]/g, '_'));
}

function describe(holderFile: string): string {
  try {
    const h = JSON.parse(readFileSync(holderFile, 'utf8')) as Holder;
    return `another m5dev (pid ${h.pid}, \`${h.command}\`, since ${h.since})`;
  } catch {
    return 'another m5dev';
  }
}

/** Run `fn` holding the named lock; waits (or fails with --no-wait) while another process holds it. */
export async function withLock<T>(home: string, resource: string, opts: LockOptions, fn: () => Promise<T>): Promise<T> {
  const path = lockPath(home, resource);
  const holderFile = `${path}.holder.json`;
  mkdirSync(join(home, 'locks'), { recursive: true });
  let waiting = false;
  let release: (() => Promise<void>) | undefined;
  while (!release) {
    try {
      release = await lockfile.lock(path, {
        realpath: false,
        lockfilePath: `${path}.lock`,
        stale: STALE_MS,
        onCompromised: (e) => process.stderr.write(`m5dev: warning: lost the lock on ${opts.what} (${e.message}); another m5dev may use it at the same time\n`),
      });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
      const holder = describe(holderFile);
      if (!opts.wait) throw new BusyError(opts.what, holder, STALE_MS / 1000);
      if (!waiting) opts.onWait?.(holder);
      waiting = true;
      if (isInterrupting()) throw new InterruptedError();
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
  const holder: Holder = { pid: process.pid, command: process.argv.slice(2).join(' '), since: new Date().toISOString() };
  writeFileSync(holderFile, JSON.stringify(holder));
  const undo = onCleanup(`lock on ${opts.what}`, () => unlock(release!, holderFile));
  try {
    return await fn();
  } finally {
    undo();
    await unlock(release, holderFile);
  }
}

async function unlock(release: () => Promise<void>, holderFile: string): Promise<void> {
  rmSync(holderFile, { force: true });
  await release().catch(() => undefined); // already released (the cleanup ran first)
}

/** The message a waiter prints (stderr), the same for every lock. */
export function waitingLine(what: string, holder: string): string {
  return `m5dev: ${what} is in use by ${holder}; waiting for it (Ctrl-C stops, --no-wait fails at once)\n`;
}
