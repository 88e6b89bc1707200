/** Suspend/resume logic: when a saved state may be resumed, and the QMP steps of a save and a resume. */
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, ftruncateSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PENDING_RECORD, SAVED_FORMAT, commitSaved, dropSaved, finishPending, guestStamps, isSuspended, markComplete, savedBytes, viewSaved, launchKey, loadStream, loadSteps, readSaved, restoringRam, resumePlan, saveStream, saveSteps, savedFilesPresent, type SavedRecord } from '../../src/vm/saved-state.js';
import { LocalDirStorage } from '../../src/engine/storage.js';
import { instanceFiles, type InstanceState } from '../../src/vm/instance.js';
import type { QmpStep } from '../../src/vm/qmp.js';
import { suspendedSettings } from '../../src/vm/reconcile.js';

const launch = { image: 'm5dev/toolchain:abc', cmd: ['qemu-system-aarch64', '-smp', '2'], binds: ['/h/i:/instance'] };
const stamps = [{ file: 'disk.qcow2', size: 10, mtimeMs: 1 }, { file: 'flash1.img', size: 64, mtimeMs: 2 }, { file: 'disk.raw', size: 2048, mtimeMs: 3 }];
const record = (over: Partial<SavedRecord> = {}): SavedRecord => ({ format: SAVED_FORMAT.ramFile, launchKey: launchKey(launch), stamps, bytes: 5, savedAt: 'now', saveMs: 1, ...over });

describe('resumePlan', () => {
  const now = { launchKey: launchKey(launch), stamps: [...stamps].reverse() };
  it('resumes the same machine on untouched files (stamp order does not matter)', () => {
    expect(resumePlan(record(), true, now, false)).toMatchObject({ kind: 'resume' });
  });
  it('has nothing to do without a record', () => {
    expect(resumePlan(undefined, true, now, false)).toEqual({ kind: 'none' });
  });
  it('discards on --no-resume, a missing memory file, or a disk that changed', () => {
    expect(resumePlan(record(), true, now, '--no-resume')).toEqual({ kind: 'discard', reason: '--no-resume' });
    expect(resumePlan(record(), true, now, 'the SSH keys were made anew')).toEqual({ kind: 'discard', reason: 'the SSH keys were made anew' });
    expect(resumePlan(record(), false, now, false)).toMatchObject({ kind: 'discard', reason: /saved memory is missing/ });
    const touched = { ...now, stamps: [stamps[0]!, { ...stamps[1]!, mtimeMs: 3 }, stamps[2]!] };
    expect(resumePlan(record(), true, touched, false)).toMatchObject({ kind: 'discard', reason: /disk changed/ });
    const grown = { ...now, stamps: [{ ...stamps[0]!, size: 11 }, stamps[1]!, stamps[2]!] };
    expect(resumePlan(record(), true, grown, false)).toMatchObject({ kind: 'discard' });
    const oneGone = { ...now, stamps: stamps.slice(0, 2) };
    expect(resumePlan(record(), true, oneGone, false)).toMatchObject({ kind: 'discard' });
  });
  it('resumes either format: RAM in the stream, or RAM in the RAM file', () => {
    expect(resumePlan(record({ format: SAVED_FORMAT.stream }), true, now, false)).toMatchObject({ kind: 'resume' });
    expect(resumePlan(record({ format: SAVED_FORMAT.ramFile }), true, now, false)).toMatchObject({ kind: 'resume' });
  });
  it('refuses (keeps the state) when asked for another machine', () => {
    for (const other of [{ ...launch, cmd: ['qemu-system-aarch64', '-smp', '4'] }, { ...launch, image: 'm5dev/toolchain:def' }, { ...launch, binds: [...launch.binds, '/k:/kernel/Image:ro'] }]) {
      expect(resumePlan(record(), true, { ...now, launchKey: launchKey(other) }, false)).toMatchObject({ kind: 'refuse' });
    }
  });
});

describe('saveSteps / loadSteps', () => {
  const names = (steps: QmpStep[]) => steps.map((s) => ('execute' in s ? s.execute : 'unlink'));
  const ignoreShared = '"capability":"x-ignore-shared","state":true';
  it('leaves RAM out of the stream only when a RAM file holds it, on both ends', () => {
    for (const steps of [saveSteps(SAVED_FORMAT.stream, saveStream('/i/s')), loadSteps(SAVED_FORMAT.stream, loadStream('/i/s'), '/i/r')]) expect(JSON.stringify(steps)).not.toContain(ignoreShared);
    for (const steps of [saveSteps(SAVED_FORMAT.ramFile, saveStream('/i/s')), loadSteps(SAVED_FORMAT.ramFile, loadStream('/i/s'), '/i/r')]) {
      expect(JSON.stringify(steps[0])).toContain(ignoreShared);
    }
  });
  it('pauses the guest before the save (one consistent pass, not a live one) and waits for the outcome', () => {
    const steps = names(saveSteps(SAVED_FORMAT.stream, saveStream('/instance/vmstate.tmp')));
    expect(steps.indexOf('stop')).toBeGreaterThanOrEqual(0);
    expect(steps.indexOf('stop')).toBeLessThan(steps.indexOf('migrate'));
    expect(steps.at(-1)).toBe('query-migrate');
    // The stream is a file handed over with getfd (no exec: process: QEMU runs with spawn=deny).
    const save = saveSteps(SAVED_FORMAT.stream, saveStream('/instance/vmstate.tmp'));
    expect(save.slice(-3, -1)).toEqual([{ execute: 'getfd', arguments: { fdname: 'm5dev-save' } }, { execute: 'migrate', arguments: { uri: 'fd:m5dev-save' } }]);
    expect(JSON.stringify(save)).not.toContain('exec:');
    expect(saveStream('/instance/vmstate.tmp')).toEqual({ name: 'm5dev-save', path: '/instance/vmstate.tmp', mode: 'write' });
  });
  it('consumes the record after the load and before the guest runs', () => {
    const steps = loadSteps(SAVED_FORMAT.ramFile, loadStream('/instance/vmstate'), '/instance/vmstate.json');
    expect(names(steps)).toEqual(['migrate-set-capabilities', 'getfd', 'migrate-incoming', 'query-status', 'unlink', 'cont']);
    expect(steps[2]).toEqual({ execute: 'migrate-incoming', arguments: { uri: 'fd:m5dev-load' } });
    expect(steps[4]).toEqual({ unlink: '/instance/vmstate.json' });
  });
});

describe('suspendedSettings', () => {
  const state = { cpus: 4, memoryMiB: 4096, cpu: 'max', accel: 'tcg', ramFile: true } as InstanceState;
  it('keeps the saved machine unless a flag says otherwise', () => {
    expect(suspendedSettings(state, new Set())).toEqual({ cpus: 4, memoryMiB: 4096, cpu: 'max', accel: 'tcg', ramFile: true, shares: [] });
    expect(suspendedSettings(state, new Set(['cpus', 'cpu', 'ramFile', 'shares']))).toEqual({ memoryMiB: 4096, accel: 'tcg' });
    // A suspended guest resumes with the shares it had: QEMU's devices must be the ones it saved.
    const shared = { ...state, shares: [{ host: '/src', guest: '/home/ubuntu/src', readOnly: false }] };
    expect(suspendedSettings(shared, new Set()).shares).toEqual(shared.shares);
    expect(suspendedSettings({ ...state, ramFile: undefined }, new Set())).toMatchObject({ ramFile: false });
  });
});

describe('saved state files', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  it('commits device state then record, stamps what the guest writes, and drops both', async () => {
    dir = mkdtempSync(join(tmpdir(), 'm5dev-saved-'));
    const files = instanceFiles(dir);
    const st = new LocalDirStorage(dir);
    writeFileSync(files.diskOverlay, 'disk');
    writeFileSync(files.flash1, 'vars');
    writeFileSync(files.flash0, 'code'); // read-only firmware: not stamped
    expect((await guestStamps(st)).map((p) => p.file).sort()).toEqual(['disk.qcow2', 'flash1.img']);
    writeFileSync(`${files.vmState}.tmp`, 'devices');
    const rec = record({ format: SAVED_FORMAT.stream, stamps: await guestStamps(st) });
    await commitSaved(st, rec);
    expect(await readSaved(st)).toEqual(rec);
    expect(await isSuspended(st)).toBe(true);
    expect(await savedFilesPresent(st, rec)).toBe(true);
    utimesSync(files.diskOverlay, new Date(), new Date(Date.now() + 5000));
    expect(resumePlan(rec, true, { launchKey: rec.launchKey, stamps: await guestStamps(st) }, false).kind).toBe('discard');
    await dropSaved(st);
    expect(await isSuspended(st)).toBe(false);
    expect(existsSync(files.vmState)).toBe(false);
    writeFileSync(files.vmStateRecord, '{"format": 2}'); // no launch key: not a record
    expect(await readSaved(st)).toBeUndefined();
    // …yet up sees it is there, and drops it before a fresh boot.
    expect([...(await viewSaved(st)).saved]).toEqual(['vmstate.json']);
    writeFileSync(files.vmStateRecord, JSON.stringify({ ...rec, format: 3 })); // a format this m5dev does not know
    expect(await readSaved(st)).toBeUndefined();
  });
  it('with the RAM in a file, commits the saved RAM with the device state, needs both, and drops both', async () => {
    dir = mkdtempSync(join(tmpdir(), 'm5dev-saved-'));
    const files = instanceFiles(dir);
    const st = new LocalDirStorage(dir);
    writeFileSync(`${files.vmState}.tmp`, 'devices');
    writeFileSync(`${files.ram}.tmp`, 'ram');
    const rec = record({ format: SAVED_FORMAT.ramFile, stamps: [] });
    await commitSaved(st, rec);
    expect([existsSync(files.ram), existsSync(`${files.ram}.tmp`), (await readSaved(st))?.format]).toEqual([true, false, SAVED_FORMAT.ramFile]);
    expect(await savedFilesPresent(st, rec)).toBe(true);
    rmSync(files.ram);
    expect(await savedFilesPresent(st, rec)).toBe(false);
    expect(await savedFilesPresent(st, { ...rec, format: SAVED_FORMAT.stream })).toBe(true);
    writeFileSync(files.ram, 'ram');
    writeFileSync(`${files.ram}.tmp`, 'half');
    await dropSaved(st);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('a save marked complete, its commit cut short (finishPending)', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const pending = { format: SAVED_FORMAT.ramFile, launchKey: 'k', savedAt: 'then', saveMs: 7 } as const;

  it('counts what a save takes: the state file, and the RAM file\'s blocks for format 2 (holes are free)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'm5dev-saved-'));
    const files = instanceFiles(dir);
    const st = new LocalDirStorage(dir);
    writeFileSync(`${files.vmState}.tmp`, Buffer.alloc(1000));
    const fd = openSync(`${files.ram}.tmp`, 'w');
    writeSync(fd, Buffer.alloc(8192, 1));
    ftruncateSync(fd, 64 * 1024 * 1024); // a 64 MiB file, 8 KiB of it written
    closeSync(fd);
    expect(await savedBytes(st, SAVED_FORMAT.stream, '.tmp')).toBe(1000);
    const both = await savedBytes(st, SAVED_FORMAT.ramFile, '.tmp');
    expect(both).toBeGreaterThanOrEqual(1000 + 8192);
    expect(both).toBeLessThan(1000 + 1024 * 1024);
    expect(await savedBytes(st, SAVED_FORMAT.ramFile)).toBe(0); // not renamed into place: nothing there yet
  });

  it('renames the state files into place, writes the record with the disks\' stamps now, and drops the mark', async () => {
    dir = mkdtempSync(join(tmpdir(), 'm5dev-saved-'));
    const files = instanceFiles(dir);
    const st = new LocalDirStorage(dir);
    writeFileSync(files.diskOverlay, 'disk');
    expect(await finishPending(st)).toBeUndefined(); // no mark: nothing to finish
    writeFileSync(`${files.vmState}.tmp`, 'devices');
    writeFileSync(files.ram, 'ram'); // this one was renamed before the commit was cut short
    await markComplete(st, pending);
    const done = await finishPending(st);
    expect(done).toMatchObject({ ...pending, stamps: await guestStamps(st) });
    expect(done?.stamps.map((x) => x.file)).toEqual(['disk.qcow2']);
    expect(done?.bytes).toBe(await savedBytes(st, SAVED_FORMAT.ramFile));
    expect(done?.bytes).toBeGreaterThan('devices'.length); // and the RAM file's block
    expect(await readSaved(st)).toEqual(done);
    expect(readdirSync(dir).sort()).toEqual(['disk.qcow2', 'ram', 'vmstate', 'vmstate.json']);
  });

  it('changes nothing for a mark it cannot use: not JSON, an unknown format, no launch key, or a state file missing', async () => {
    dir = mkdtempSync(join(tmpdir(), 'm5dev-saved-'));
    const files = instanceFiles(dir);
    const st = new LocalDirStorage(dir);
    writeFileSync(`${files.vmState}.tmp`, 'devices');
    for (const bad of ['{not json', JSON.stringify({ ...pending, format: 3 }), JSON.stringify({ ...pending, launchKey: 5 })]) {
      writeFileSync(join(dir, PENDING_RECORD), bad);
      expect(await finishPending(st)).toBeUndefined();
    }
    await markComplete(st, pending); // format 2 needs the RAM file too: there is none
    expect(await finishPending(st)).toBeUndefined();
    expect(readdirSync(dir).sort()).toEqual(['vmstate.pending.json', 'vmstate.tmp']);
    // Format 1 needs only the state: finished.
    await markComplete(st, { ...pending, format: SAVED_FORMAT.stream });
    expect(await finishPending(st)).toMatchObject({ format: SAVED_FORMAT.stream, bytes: 'devices'.length });
    expect(readdirSync(dir).sort()).toEqual(['vmstate', 'vmstate.json']);
  });
});

describe('restoringRam', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  it('copies the saved RAM into place, sparse, then runs the command with its arguments intact', () => {
    dir = mkdtempSync(join(tmpdir(), 'm5dev-ram-'));
    const saved = join(dir, 'ram');
    const fd = openSync(saved, 'w');
    writeSync(fd, 'page', 8 * 2 ** 20);
    ftruncateSync(fd, 64 * 2 ** 20);
    closeSync(fd);
    const target = join(dir, 'tmpfs-ram');
    const cmd = restoringRam(saved, target, ['stat', '-c', '%s %b %B', target]);
    const [size, blocks, blockSize] = execFileSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8' }).trim().split(' ').map(Number);
    expect(size).toBe(64 * 2 ** 20);
    expect(blocks! * blockSize!).toBeLessThan(2 ** 20); // holes stayed holes
    expect(readFileSync(target).subarray(8 * 2 ** 20, 8 * 2 ** 20 + 4).toString()).toBe('page');
    const missing = restoringRam(join(dir, 'absent'), target, ['true']);
    expect(() => execFileSync(missing[0]!, missing.slice(1), { stdio: 'ignore' })).toThrow();
  });
});
