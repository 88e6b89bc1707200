/**
 * The host side of m5ops, as the commands see it: the instance's readfile, its m5out/ tree and the
 * op log the QEMU plugin (docker/m5ops/m5ops.c) keeps, read through the instance's storage so it
 * works the same whether the engine shares this machine's files or keeps them in a volume.
 */
import { closeSync, constants, copyFileSync, fstatSync, mkdtempSync, openSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Storage, TailVia } from '../engine/storage.js';
import { sha256File } from '../download/store.js';
import { M5opsError, UsageError } from '../errors.js';
import { isExit, parseLog, type M5opEvent } from '../m5ops/ops.js';
import { join } from 'node:path';

/** The plugin's files in the instance (as the VM container sees it: /instance/…). */
export const M5OPS_STORED = { log: 'm5ops.log', readfile: 'm5ops-readfile', out: 'm5out', cursor: 'm5ops-wait.json' } as const;
/** The plugin in the toolchain image. */
export const M5OPS_PLUGIN = '/usr/local/lib/m5dev/m5ops.so';

/**
 * More than any log a launch writes: its cap (64 MiB) and the exits' reserve past it (16 MiB),
 * with room (docker/m5ops/m5out-policy.h); a log at its cap starts afresh at the next launch.
 */
const MAX_LOG = 96 * 2 ** 20;

/**
 * Copy a host file in as the guest's readfile; it appears whole (the guest may be reading the old
 * one). `within`: the file must lie in this directory (an m5dev.json's readfile): checked on the
 * file as opened, by the kernel's path of the open descriptor, and copied from that descriptor, so
 * a link swapped in between (a share lets the guest write there) cannot turn it into another file.
 */
export async function putReadfile(storage: Storage, localPath: string, within?: string): Promise<void> {
  let fd: number;
  try {
    fd = openSync(localPath, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new UsageError(`readfile ${localPath}: ${(e as Error).message}`, 'Give a regular file the guest reads with `m5 readfile`.');
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new UsageError(`readfile ${localPath} is not a regular file`, 'Give a regular file the guest reads with `m5 readfile`.');
    const opened = `/proc/self/fd/${fd}`;
    if (within !== undefined) {
      const real = realpathSync.native(opened);
      const root = realpathSync.native(within);
      if (!real.startsWith(`${root}/`)) throw new UsageError(`readfile ${localPath} is ${real}, outside ${root}`, 'An m5dev.json may hand the guest only files of its own directory tree; give others with --m5ops-readfile.');
    }
    // A copy of what was opened, in a private directory (an archive of /proc/self/fd/N would hold
    // a link), then imported whole and verified where it lands.
    const stage = mkdtempSync(join(tmpdir(), 'm5dev-readfile-'));
    const tmp = join(stage, M5OPS_STORED.readfile);
    try {
      copyFileSync(opened, tmp);
      if (statSync(tmp).size !== st.size) throw new UsageError(`readfile ${localPath} changed while it was copied`, 'Copy it again when it is complete.');
      await storage.importFile(tmp, M5OPS_STORED.readfile, await sha256File(tmp));
    } finally {
      rmSync(stage, { recursive: true, force: true });
    }
  } finally {
    closeSync(fd);
  }
}

export async function readEvents(storage: Storage, via?: TailVia): Promise<M5opEvent[]> {
  return parseLog(await storage.readTail(M5OPS_STORED.log, MAX_LOG, via));
}

/**
 * Where `m5ops wait` is in the exits of a launch: the launch (its `start` record's host time) and
 * how many of its exits earlier waits returned. Kept in the instance (M5OPS_STORED.cursor).
 */
export interface WaitCursor {
  launch: number;
  returned: number;
}

export interface WaitSource {
  read: () => Promise<M5opEvent[]>;
  /** Is the VM still running (QEMU may have powered it off on the guest's exit)? */
  alive: () => Promise<boolean>;
  cursor: () => Promise<WaitCursor | undefined>;
  /** Record what this wait returned (so the next wait returns the exit after it). */
  advance: (c: WaitCursor) => Promise<void>;
}

/** Pure: the latest launch's id (its start record's time; 0 when the log has none) and its exits, in order. */
export function latestRun(events: M5opEvent[]): { launch: number; exits: M5opEvent[] } {
  const at = events.map((e) => e.op).lastIndexOf('start');
  return { launch: events[at]?.time ?? 0, exits: events.slice(at + 1).filter(isExit) };
}

/** Pure: the index of the first exit of `launch` a wait may return. */
export function firstUnreturned(launch: number, cursor: WaitCursor | undefined): number {
  return cursor?.launch === launch ? cursor.returned : 0;
}

/**
 * The first exit/fail/panic of the latest launch that no earlier wait on this instance returned
 * (so `exec 'm5 exit'; m5ops wait` returns at once), or with `future`, the first one after this
 * call. Polls the log; `onWaiting` is called when it has to wait. A launch that starts meanwhile
 * (an up after the VM stopped) is followed from its start.
 */
export async function waitForExit(src: WaitSource, timeoutMs: number, opts: { future?: boolean; onWaiting?: () => void; pollMs?: number } = {}): Promise<M5opEvent> {
  const first = latestRun(await src.read());
  let launch = first.launch;
  let next = opts.future ? first.exits.length : firstUnreturned(launch, await src.cursor());
  const deadline = Date.now() + timeoutMs;
  for (let polls = 0; ; polls++) {
    const alive = await src.alive();
    const run = latestRun(await src.read());
    if (run.launch !== launch) {
      launch = run.launch;
      next = 0;
    }
    const e = run.exits[next];
    if (e) {
      await src.advance({ launch, returned: next + 1 });
      return e;
    }
    if (!alive) {
      throw new M5opsError(
        next ? `the VM stopped, and its ${next} m5 exit/fail record(s) were returned by earlier waits` : 'the VM stopped without an m5 exit or fail',
        'Start it with `m5dev up`; `m5dev m5ops log` shows what the guest did.',
      );
    }
    if (Date.now() >= deadline) {
      throw new M5opsError(`no m5 exit or fail within ${Math.round(timeoutMs / 1000)} s`, 'The guest runs on; wait again, or look at `m5dev m5ops log`.');
    }
    if (polls === 0) opts.onWaiting?.();
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 250));
  }
}

/** The wait cursor in the instance's storage (a damaged one counts as none). */
export function cursorStore(storage: Storage): Pick<WaitSource, 'cursor' | 'advance'> {
  return {
    cursor: async () => {
      const raw = await storage.read(M5OPS_STORED.cursor);
      try {
        const c = raw ? (JSON.parse(raw.toString('utf8')) as Partial<WaitCursor>) : undefined;
        return c && typeof c.launch === 'number' && typeof c.returned === 'number' ? { launch: c.launch, returned: c.returned } : undefined;
      } catch {
        return undefined;
      }
    },
    advance: (c) => storage.write([{ name: M5OPS_STORED.cursor, data: `${JSON.stringify(c)}\n` }]),
  };
}
