/**
 * Inter-process locks on named resources (an instance, a kernel build, a download) under
 * $M5DEV_HOME/locks, with proper-lockfile: an atomic mkdir, its mtime refreshed while held. Beside
 * each lock, who holds it (client-id.ts), so a waiter can say what it waits for and whether the
 * holder lives. A holder of this machine is waited for as long as its process lives, however long
 * it does not run (Ctrl-Z, a laptop asleep), and taken over at once when it died (kill -9). Only a
 * holder that cannot be checked (another machine sharing the home, a holder file not yet written)
 * falls back to the lock's age: stale after STALE_MS without a refresh.
 */
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { BusyError, ExitCode, InterruptedError } from './errors.js';
import { abortCommand, isInterrupting, onCleanup } from './cleanup.js';
import { CLIENT, clientAlive } from './client-id.js';

export const STALE_MS = 10_000;
const POLL_MS = 300;
/** proper-lockfile's own age check, left to the holder check above (a day: never, in practice). */
const LIBRARY_STALE_MS = 24 * 3600_000;

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
  /** client-id.ts: host, boot and pid. */
  client?: string;
  command: string;
  since: string;
}

/** Lock file names: one flat directory, names made safe. */
function lockPath(home: string, resource: string): string {
  return join(home, 'locks', resource.replace(/[^A-Za-z0-9._-]/g, '_'));
}

function readHolder(holderFile: string): Holder | undefined {
  try {
    return JSON.parse(readFileSync(holderFile, 'utf8')) as Holder;
  } catch {
    return undefined;
  }
}

function describe(h: Holder | undefined): string {
  return h ? `another m5dev (pid ${h.pid}, \`${h.command}\`, since ${h.since})` : 'another m5dev';
}

/**
 * Whether a lock held by `h` may be taken over: its holder died (a process of this machine and
 * boot that is gone), or it cannot be checked and the lock was not refreshed for STALE_MS.
 */
function abandoned(h: Holder | undefined, lockDir: string): boolean {
  const alive = h?.client ? clientAlive(h.client) : undefined;
  if (alive !== undefined) return !alive;
  try {
    return Date.now() - statSync(lockDir).mtimeMs > STALE_MS;
  } catch {
    return false; // released meanwhile: the next try takes it
  }
}

/** Run `fn` holding the named lock; waits (or fails with --no-wait) while another process holds it. */
export async function withLock<T>(home: string, resource: string, opts: LockOptions, fn: () => Promise<T>): Promise<T> {
  const path = lockPath(home, resource);
  const holderFile = `${path}.holder.json`;
  mkdirSync(join(home, 'locks'), { recursive: true });
  let waiting = false;
  let taken: (() => Promise<void>) | undefined;
  while (!taken) {
    try {
      taken = await lockfile.lock(path, {
        realpath: false,
        lockfilePath: `${path}.lock`,
        stale: LIBRARY_STALE_MS,
        update: STALE_MS / 2,
        // Another process took the lock (or removed it): going on could meet it on the same files.
        onCompromised: (e) => abortCommand(`m5dev: error: lost the lock on ${opts.what} (${e.message}): another m5dev may be using it; stopped, and what this command had begun is undone\nhint: See who holds it with \`m5dev status\`; run the command again when it is free.\n`, ExitCode.busy),
      });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
      const h = readHolder(holderFile);
      if (abandoned(h, `${path}.lock`) && takeOver(path, holderFile)) continue; // try again at once
      const holder = describe(h);
      if (!opts.wait) throw new BusyError(opts.what, holder);
      if (!waiting) opts.onWait?.(holder);
      waiting = true;
      if (isInterrupting()) throw new InterruptedError();
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
  const release = taken;
  const holder: Holder = { pid: process.pid, client: CLIENT, command: process.argv.slice(2).join(' '), since: new Date().toISOString() };
  writeFileSync(holderFile, JSON.stringify(holder));
  const undo = onCleanup(`lock on ${opts.what}`, () => unlock(release, holderFile));
  try {
    return await fn();
  } finally {
    undo();
    await unlock(release, holderFile);
  }
}

/**
 * Remove an abandoned lock, one waiter at a time: under a takeover mutex (an atomic mkdir) the holder
 * is checked again, so a waiter that saw the dead holder a moment ago never removes the lock another
 * waiter has just taken over. Returns whether this waiter removed it. A mutex left by a waiter that
 * died holding it (it holds it for microseconds) is cleared after STALE_MS.
 */
function takeOver(path: string, holderFile: string): boolean {
  const mutex = `${path}.takeover`;
  try {
    mkdirSync(mutex);
  } catch {
    try {
      if (Date.now() - statSync(mutex).mtimeMs > STALE_MS) rmSync(mutex, { recursive: true, force: true });
    } catch {
      // gone meanwhile
    }
    return false;
  }
  try {
    if (!abandoned(readHolder(holderFile), `${path}.lock`)) return false;
    rmSync(holderFile, { force: true });
    rmSync(`${path}.lock`, { recursive: true, force: true });
    return true;
  } finally {
    rmSync(mutex, { recursive: true, force: true });
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
