/**
 * A suspended guest: QEMU's saved state (`vmstate`: device state, and all of RAM unless the guest
 * ran with its RAM in a file, which the suspend copies out to `ram`) and a record (`vmstate.json`)
 * of what it may be resumed with. The record is the commit point: written last on suspend, deleted
 * first on resume, so a state is never used twice and never with a disk that moved on.
 */
import { createHash } from 'node:crypto';
import { STORED } from './instance.js';
import type { QmpFd, QmpStep } from './qmp.js';
import type { Storage } from '../engine/storage.js';

/** Size and mtime of a file the guest writes (its disk, its UEFI variables), as its storage reports them. */
export interface FileStamp {
  file: string;
  size: number;
  mtimeMs: number;
}

/** What `vmstate` holds: 1, RAM and devices (anonymous RAM); 2, devices only (RAM in the RAM file). */
export const SAVED_FORMAT = { stream: 1, ramFile: 2 } as const;
export type SavedFormat = (typeof SAVED_FORMAT)[keyof typeof SAVED_FORMAT];

/**
 * Migration capabilities both ends of a save must set for a format (they must agree): with a RAM
 * file, RAM that is a shared file mapping stays out of the stream (the RAM file is the saved RAM).
 */
function capabilitySteps(format: SavedFormat): QmpStep[] {
  return format === SAVED_FORMAT.ramFile
    ? [{ execute: 'migrate-set-capabilities', arguments: { capabilities: [{ capability: 'x-ignore-shared', state: true }] } }]
    : [];
}

/** Unlimited: QEMU's default migration bandwidth cap is for networks, not a local file. */
const MAX_BANDWIDTH = 2 ** 40;

/** The save's stream: `target` in the VM container, opened by the monitor's relay and handed to QEMU (no `exec:` process). */
export const saveStream = (target: string): QmpFd => ({ name: 'm5dev-save', path: target, mode: 'write' });
/** The resume's stream: `source` in the VM container, likewise. */
export const loadStream = (source: string): QmpFd => ({ name: 'm5dev-load', path: source, mode: 'read' });

/**
 * The QMP steps of a save into `stream` (its session's relay holds the file); the last result is query-migrate's.
 * The guest is paused first, so the save is one consistent pass: a live save of a running guest
 * under TCG could miss pages the guest dirtied meanwhile (measured: a resumed guest under memory
 * load oopsed about once in ten), and a suspended guest has no use for the shorter pause anyway.
 */
export function saveSteps(format: SavedFormat, stream: QmpFd): QmpStep[] {
  return [
    ...capabilitySteps(format),
    { execute: 'migrate-set-parameters', arguments: { 'max-bandwidth': MAX_BANDWIDTH } },
    { execute: 'stop' },
    { execute: 'getfd', arguments: { fdname: stream.name } },
    { execute: 'migrate', arguments: { uri: `fd:${stream.name}` } },
    { execute: 'query-migrate', poll: { field: 'status', until: ['completed', 'failed', 'cancelled'] } },
  ];
}

/**
 * The QMP steps of a resume from `stream` (its session's relay holds the file) into a QEMU started with `-S -incoming defer`: load
 * (with a RAM file, only the devices), consume the record before the guest runs (a saved state is
 * resumed at most once), run.
 */
export function loadSteps(format: SavedFormat, stream: QmpFd, record: string): QmpStep[] {
  return [
    ...capabilitySteps(format),
    { execute: 'getfd', arguments: { fdname: stream.name } },
    { execute: 'migrate-incoming', arguments: { uri: `fd:${stream.name}` } },
    { execute: 'query-status', poll: { field: 'status', while: ['inmigrate'], expect: ['paused'] } },
    { unlink: record },
    { execute: 'cont' },
  ];
}

/**
 * The VM container's command on a resume of a format-2 state: copy the saved RAM into the
 * container's tmpfs (holes stay holes), then QEMU maps it. Pure.
 */
export function restoringRam(saved: string, ramFile: string, qemu: string[]): string[] {
  return ['sh', '-c', 'cp --sparse=always "$1" "$2" && shift 2 && exec "$@"', 'm5dev-restore-ram', saved, ramFile, ...qemu];
}

export interface SavedRecord {
  format: SavedFormat;
  /** launchKey() of the QEMU that was saved: a resume must start the very same machine. */
  launchKey: string;
  stamps: FileStamp[];
  bytes: number;
  savedAt: string;
  saveMs: number;
}

/** What the VM container runs: toolchain image (so the QEMU build), command line and mounts. Pure. */
export function launchKey(launch: { image: string; cmd: string[]; binds: string[] }): string {
  return createHash('sha256').update(JSON.stringify([launch.image, launch.cmd, launch.binds])).digest('hex');
}

/**
 * The machine a checkpoint restores into, wherever its instance lives: the toolchain image, QEMU's
 * command line with the m5ops plugin's behaviour options left out (how many exits end a job, the
 * init_param values: they change what the host answers, not the machine's state), and the mount
 * targets (not the instance's own paths). Pure.
 */
export function portableKey(launch: { image: string; cmd: string[]; targets: string[] }): string {
  const plugin = launch.cmd.indexOf('-plugin') + 1;
  const cmd = launch.cmd.map((a, i) => (i === plugin && plugin > 0 ? a.split(',').filter((o) => !/^(exits|param|checkpoint)=/.test(o)).join(',') : a));
  return createHash('sha256').update(JSON.stringify(['portable', launch.image, cmd, launch.targets])).digest('hex');
}

/** The files the guest writes that a saved state depends on, and the files of a saved state. */
const GUEST_WRITTEN = [STORED.diskRaw, STORED.diskOverlay, STORED.flash1];
/** Written once a save is complete, before QEMU quits: what the record will say, but its disk stamps. */
export const PENDING_RECORD = 'vmstate.pending.json';
const SAVED_FILES = [STORED.vmState, STORED.ram, `${STORED.vmState}.tmp`, `${STORED.ram}.tmp`, `${STORED.vmStateRecord}.tmp`, PENDING_RECORD];

/** One look at the storage for a resume decision (one helper container on a volume). */
export interface SavedView {
  /** Stamps of the guest-written files that exist. */
  stamps: FileStamp[];
  /** Which saved-state files exist (the record among them, even one this m5dev cannot read). */
  saved: Set<string>;
}

export async function viewSaved(st: Storage): Promise<SavedView> {
  const found = await st.stat([...GUEST_WRITTEN, STORED.vmStateRecord, ...SAVED_FILES]);
  return {
    stamps: GUEST_WRITTEN.flatMap((f) => {
      const s = found.get(f);
      return s ? [{ file: s.file, size: s.size, mtimeMs: s.mtimeMs }] : [];
    }),
    saved: new Set([STORED.vmStateRecord, ...SAVED_FILES].filter((f) => found.has(f))),
  };
}

/** Whether the files a record's format needs are there: the saved state, and the saved RAM for format 2. */
export function savedFilesIn(view: SavedView, record: SavedRecord | undefined): boolean {
  return view.saved.has(STORED.vmState) && (record?.format !== SAVED_FORMAT.ramFile || view.saved.has(STORED.ram));
}

export async function guestStamps(st: Storage): Promise<FileStamp[]> {
  return (await viewSaved(st)).stamps;
}

export async function savedFilesPresent(st: Storage, record: SavedRecord | undefined): Promise<boolean> {
  return savedFilesIn(await viewSaved(st), record);
}

export type ResumePlan =
  | { kind: 'none' }
  | { kind: 'resume'; record: SavedRecord }
  /** Unusable: drop it (resuming would corrupt the disk or cannot work). */
  | { kind: 'discard'; reason: string }
  /** Usable, but not with the settings asked for: the user must choose. */
  | { kind: 'refuse'; reason: string };

/** Pure: whether `up` may resume a saved state. */
export function resumePlan(
  record: SavedRecord | undefined,
  stateFilePresent: boolean,
  now: { launchKey: string; stamps: FileStamp[] },
  /** Why the saved state must not be resumed (--no-resume, the keys made anew), or false. */
  discard: string | false,
): ResumePlan {
  if (!record) return { kind: 'none' };
  if (discard) return { kind: 'discard', reason: discard };
  if (!stateFilePresent) return { kind: 'discard', reason: 'its saved memory is missing' };
  const key = (s: FileStamp[]) => JSON.stringify([...s].sort((a, b) => a.file.localeCompare(b.file)));
  if (key(record.stamps) !== key(now.stamps)) return { kind: 'discard', reason: 'the disk changed after the guest was suspended' };
  if (record.launchKey !== now.launchKey) return { kind: 'refuse', reason: 'the VM settings, kernel or toolchain image differ from the suspended machine' };
  return { kind: 'resume', record };
}

export async function readSaved(st: Storage): Promise<SavedRecord | undefined> {
  const raw = await st.read(STORED.vmStateRecord);
  if (!raw) return undefined;
  try {
    const r = JSON.parse(raw.toString('utf8')) as SavedRecord;
    return (r.format === SAVED_FORMAT.stream || r.format === SAVED_FORMAT.ramFile) && typeof r.launchKey === 'string' && Array.isArray(r.stamps) ? r : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Commit a suspend: the saved state (and a RAM file that holds the guest's memory) on stable
 * storage, so a host crash cannot leave a record pointing at torn data; the state renamed into
 * place; then the record, written and renamed the same way.
 */
export async function commitSaved(st: Storage, record: SavedRecord): Promise<void> {
  const pairs: [string, string][] = [[`${STORED.vmState}.tmp`, STORED.vmState]];
  if (record.format === SAVED_FORMAT.ramFile) pairs.push([`${STORED.ram}.tmp`, STORED.ram]);
  await st.syncRename(pairs);
  await writeRecord(st, record);
}

/** A saved state copied in whole by another step (a checkpoint into a new instance): only its record is committed. */
export function commitCopied(st: Storage, record: SavedRecord): Promise<void> {
  return writeRecord(st, record);
}

/**
 * The commit point: the record, written and renamed into place on stable storage. The pending mark
 * goes just before the rename: a committed record never has a mark beside it (a resume consumes the
 * record, and a mark left behind could later commit that used state again).
 */
async function writeRecord(st: Storage, record: SavedRecord): Promise<void> {
  await st.write([{ name: `${STORED.vmStateRecord}.tmp`, data: `${JSON.stringify(record, null, 2)}\n` }]);
  await st.remove([PENDING_RECORD]);
  await st.syncRename([[`${STORED.vmStateRecord}.tmp`, STORED.vmStateRecord]]);
}

/**
 * What a save takes on disk: its state file's size, and for format 2 the blocks its sparse RAM file
 * holds; `suffix` '.tmp' for the files of a save not renamed into place yet.
 */
export async function savedBytes(st: Storage, format: SavedFormat, suffix = ''): Promise<number> {
  const sizes = await st.stat([`${STORED.vmState}${suffix}`, `${STORED.ram}${suffix}`]);
  return (sizes.get(`${STORED.vmState}${suffix}`)?.size ?? 0) + (format === SAVED_FORMAT.ramFile ? (sizes.get(`${STORED.ram}${suffix}`)?.allocated ?? 0) : 0);
}

/** A save that is complete, whose commit has not been made yet (PENDING_RECORD). */
export type PendingCommit = Omit<SavedRecord, 'stamps' | 'bytes'>;

/**
 * Mark a save complete, before QEMU quits (it releases the disks then): if the commit after that
 * fails (a full disk for the record, a lost engine), the next `up` finishes it instead of dropping
 * a complete save (finishPending).
 */
export async function markComplete(st: Storage, pending: PendingCommit): Promise<void> {
  await st.write([{ name: PENDING_RECORD, data: `${JSON.stringify(pending)}\n` }]);
}

/**
 * Finish the commit of a save that was complete (PENDING_RECORD) when no record was written after
 * it: only while no VM runs (its disks are as QEMU left them when it quit, so their stamps now are
 * the save's). The state files are renamed into place where the cut-short commit had not; the
 * record is written last, as commitSaved does. Undefined (and nothing changed) when there is none,
 * or when its files are not all there.
 */
export async function finishPending(st: Storage): Promise<SavedRecord | undefined> {
  const raw = await st.read(PENDING_RECORD);
  if (!raw) return undefined;
  let pending: PendingCommit;
  try {
    pending = JSON.parse(raw.toString('utf8')) as PendingCommit;
  } catch {
    return undefined;
  }
  if ((pending.format !== SAVED_FORMAT.stream && pending.format !== SAVED_FORMAT.ramFile) || typeof pending.launchKey !== 'string') return undefined;
  const view = await viewSaved(st);
  const files = pending.format === SAVED_FORMAT.ramFile ? [STORED.vmState, STORED.ram] : [STORED.vmState];
  if (!files.every((f) => view.saved.has(f) || view.saved.has(`${f}.tmp`))) return undefined;
  await st.syncRename(files.filter((f) => view.saved.has(`${f}.tmp`)).map((f): [string, string] => [`${f}.tmp`, f]));
  const record: SavedRecord = { ...pending, stamps: view.stamps, bytes: await savedBytes(st, pending.format) };
  await writeRecord(st, record);
  return record;
}

/** Forget a saved state (the record first, in one pass: without it the memory files are never used). */
export async function dropSaved(st: Storage): Promise<void> {
  await st.remove([STORED.vmStateRecord, ...SAVED_FILES]);
}

export async function isSuspended(st: Storage): Promise<boolean> {
  return (await readSaved(st)) !== undefined;
}
