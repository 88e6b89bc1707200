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
export const M5OPS_STORED = { log: 'm5ops.log', readfile: 'm5ops-readfile', out: 'm5out' } as const;
/** The plugin in the toolchain image. */
export const M5OPS_PLUGIN = '/usr/local/lib/m5dev/m5ops.so';

/** More than any log a session writes (sum and the continuation calls of a file are not logged). */
const MAX_LOG = 64 * 2 ** 20;

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

export interface WaitSource {
  read: () => Promise<M5opEvent[]>;
  /** Is the VM still running (QEMU may have powered it off on the guest's exit)? */
  alive: () => Promise<boolean>;
}

/**
 * The guest's next exit/fail/panic after this call; when the VM has already stopped, the last one
 * of its run (a `--m5ops-exit poweroff` job may end before anyone waits). Polls the log.
 */
export async function waitForExit(src: WaitSource, timeoutMs: number, onWaiting?: () => void, pollMs = 250): Promise<M5opEvent> {
  const seen = (await src.read()).filter(isExit).length;
  onWaiting?.();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const alive = await src.alive();
    const events = await src.read();
    const exits = events.filter(isExit);
    if (exits.length > seen) return exits[seen]!;
    if (!alive) {
      const run = events.slice(events.map((e) => e.op).lastIndexOf('start') + 1).filter(isExit);
      if (run.length) return run[run.length - 1]!;
      throw new M5opsError('the VM stopped without an m5 exit or fail', 'Start it with `m5dev up`; `m5dev m5ops log` shows what the guest did.');
    }
    if (Date.now() >= deadline) {
      throw new M5opsError(`no m5 exit or fail within ${Math.round(timeoutMs / 1000)} s`, 'The guest runs on; wait again, or look at `m5dev m5ops log`.');
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
