/**
 * A suspended guest: QEMU's saved RAM and device state (`vmstate`) plus a record (`vmstate.json`)
 * of what it may be resumed with. The record is the commit point: written last on suspend,
 * deleted first on resume, so a state is never used twice and never with a disk that moved on.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { InstanceFiles } from './instance.js';

/** Size and mtime of a file the guest writes (its disk, its UEFI variables). */
export interface FileStamp {
  file: string;
  size: number;
  mtimeMs: number;
}

export interface SavedRecord {
  format: 1;
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

/** The files whose contents belong to the saved state (those that exist). */
export function guestWrittenFiles(files: InstanceFiles): string[] {
  return [files.diskRaw, files.diskOverlay, files.flash1].filter((p) => existsSync(p));
}

export function stampFiles(paths: string[]): FileStamp[] {
  return paths.map((p) => {
    const st = statSync(p);
    return { file: basename(p), size: st.size, mtimeMs: st.mtimeMs };
  });
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
  noResume: boolean,
): ResumePlan {
  if (!record) return { kind: 'none' };
  if (noResume) return { kind: 'discard', reason: '--no-resume' };
  if (!stateFilePresent) return { kind: 'discard', reason: 'its memory file is missing' };
  const key = (s: FileStamp[]) => JSON.stringify([...s].sort((a, b) => a.file.localeCompare(b.file)));
  if (key(record.stamps) !== key(now.stamps)) return { kind: 'discard', reason: 'the disk changed after the guest was suspended' };
  if (record.launchKey !== now.launchKey) return { kind: 'refuse', reason: 'the VM settings, kernel or toolchain image differ from the suspended machine' };
  return { kind: 'resume', record };
}

export function readSaved(files: InstanceFiles): SavedRecord | undefined {
  if (!existsSync(files.vmStateRecord)) return undefined;
  try {
    const r = JSON.parse(readFileSync(files.vmStateRecord, 'utf8')) as SavedRecord;
    return r.format === 1 && typeof r.launchKey === 'string' && Array.isArray(r.stamps) ? r : undefined;
  } catch {
    return undefined;
  }
}

/** Commit a suspend: the memory file is complete (`.tmp` renamed), then the record appears. */
export function commitSaved(files: InstanceFiles, record: SavedRecord): void {
  renameSync(`${files.vmState}.tmp`, files.vmState);
  writeFileSync(`${files.vmStateRecord}.tmp`, `${JSON.stringify(record, null, 2)}\n`);
  renameSync(`${files.vmStateRecord}.tmp`, files.vmStateRecord);
}

/** Forget a saved state (record first: without it the memory file is never used). */
export function dropSaved(files: InstanceFiles): void {
  rmSync(files.vmStateRecord, { force: true });
  rmSync(`${files.vmStateRecord}.tmp`, { force: true });
  rmSync(`${files.vmState}.tmp`, { force: true });
  rmSync(files.vmState, { force: true });
}

export function isSuspended(files: InstanceFiles): boolean {
  return readSaved(files) !== undefined;
}
