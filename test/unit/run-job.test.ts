/** `m5dev run`'s pure decisions: a user's disk image judged by its bytes, when a job ends, the console made safe line by line; and its blob import. */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { judgeDiskImage } from '../../src/vm/disk-image.js';
import { jobEnd, jobFailure, exitsSeen } from '../../src/m5ops/job.js';
import type { M5opEvent } from '../../src/m5ops/ops.js';
import { ConsoleLines, followConsole } from '../../src/workflows/console-follow.js';
import { LocalDirStorage } from '../../src/engine/storage.js';
import { IN_CONTAINER, STORED } from '../../src/vm/instance.js';
import { spawnSync } from 'node:child_process';
import { storeLocalFile } from '../../src/download/local-blob.js';
import { BlobStore } from '../../src/download/store.js';
import { layout } from '../../src/paths.js';
import { portableKey } from '../../src/vm/saved-state.js';
import { parseCheckpointRef } from '../../src/workflows/checkpoint.js';
import { parseM5opsParam } from '../../src/config.js';

/** A qcow2 header: magic, version, backing file offset, and (v3) the incompatible features. */
function qcow2(version: number, backingOffset = 0n, incompatible = 0n, length = 104): Buffer {
  const b = Buffer.alloc(length);
  b.writeUInt32BE(0x514649fb, 0);
  b.writeUInt32BE(version, 4);
  b.writeBigUInt64BE(backingOffset, 8);
  if (length >= 80) b.writeBigUInt64BE(incompatible, 72);
  return b;
}

describe('a disk image judged by its own bytes', () => {
  it('qcow2 by its magic, raw otherwise (never a format QEMU would probe)', () => {
    expect(judgeDiskImage(qcow2(3), 1 << 30)).toEqual({ ok: true, format: 'qcow2' });
    expect(judgeDiskImage(qcow2(2, 0n, 0n, 72), 1 << 30)).toEqual({ ok: true, format: 'qcow2' });
    expect(judgeDiskImage(Buffer.from('QFI'), 3)).toEqual({ ok: true, format: 'raw' });
    expect(judgeDiskImage(Buffer.alloc(104), 1 << 20)).toEqual({ ok: true, format: 'raw' });
  });
  it('refuses a qcow2 that names another file, one it cannot read, and an empty file', () => {
    expect(judgeDiskImage(qcow2(3, 0x200n), 1 << 30)).toMatchObject({ ok: false, reason: expect.stringMatching(/backing file/) });
    expect(judgeDiskImage(qcow2(2, 0x200n, 0n, 72), 1 << 30)).toMatchObject({ ok: false, reason: expect.stringMatching(/backing file/) });
    expect(judgeDiskImage(qcow2(3, 0n, 1n << 2n), 1 << 30)).toMatchObject({ ok: false, reason: expect.stringMatching(/external data file/) });
    // Other incompatible bits (dirty, corrupt, compression type) are QEMU's to judge.
    expect(judgeDiskImage(qcow2(3, 0n, 0b11n), 1 << 30)).toEqual({ ok: true, format: 'qcow2' });
    expect(judgeDiskImage(qcow2(4), 1 << 30)).toMatchObject({ ok: false, reason: expect.stringMatching(/version 4/) });
    expect(judgeDiskImage(qcow2(3, 0n, 0n, 60), 60)).toMatchObject({ ok: false, reason: expect.stringMatching(/cut short/) });
    expect(judgeDiskImage(qcow2(3, 0n, 0n, 76), 76)).toMatchObject({ ok: false, reason: expect.stringMatching(/cut short/) });
    expect(judgeDiskImage(Buffer.alloc(0), 0)).toMatchObject({ ok: false, reason: 'it is empty' });
  });
});

const ev = (op: string, code?: number): M5opEvent => ({ time: 1, vclockNs: 1, vcpu: 0, func: 0, op, args: [], result: '0x0', code });

describe('when a job ends', () => {
  it('at its Nth exit, counting only exits', () => {
    expect(jobEnd([], 1)).toBeUndefined();
    expect(jobEnd([ev('exit', 0)], 2)).toBeUndefined();
    expect(jobEnd([ev('exit', 0), ev('exit', 0)], 2)).toMatchObject({ kind: 'exit', code: 0 });
    const first = ev('exit', 0);
    expect(jobEnd([first, ev('exit', 0)], 1)?.event).toBe(first);
    expect(exitsSeen([ev('exit', 0), ev('fail', 3), ev('exit', 0)])).toBe(2);
  });
  it('at the first fail or panic, whatever the exits wanted', () => {
    expect(jobEnd([ev('exit', 0), ev('fail', 3)], 2)).toMatchObject({ kind: 'fail', code: 3 });
    expect(jobEnd([ev('panic', 134)], 5)).toMatchObject({ kind: 'panic', code: 134 });
    expect(jobEnd([ev('fail', 0)], 1)).toMatchObject({ kind: 'fail', code: 0 });
    expect(jobEnd([ev('fail')], 1)).toMatchObject({ kind: 'fail', code: 1 });
    // The exit that would end it comes after the fail: the fail ends it.
    expect(jobEnd([ev('fail', 4), ev('exit', 0)], 1)).toMatchObject({ kind: 'fail', code: 4 });
  });
  it('is a failure in its JUnit report exactly when its code is not 0 (gem5\'s `m5 fail 0` passes, as its exit code does)', () => {
    const end = (e: M5opEvent[]) => jobEnd(e, 1)!;
    expect(jobFailure(end([ev('exit', 0)]))).toBeUndefined();
    expect(jobFailure(end([ev('fail', 0)]))).toBeUndefined();
    expect(jobFailure(end([ev('fail', 3)]))).toBe("the guest's m5 fail 3");
    expect(jobFailure(end([ev('panic', 134)]))).toBe("the guest's m5 panic 134");
  });
});

describe('the console, line by line', () => {
  it('shows a line once it ends, a multi-byte character split across reads whole, and the rest at the end', () => {
    const c = new ConsoleLines();
    const e = Buffer.from('héllo\n', 'utf8');
    expect(c.push(e.subarray(0, 2))).toBe('');
    expect(c.push(e.subarray(2))).toBe('héllo\n');
    expect(c.push(Buffer.from('no end'))).toBe('');
    expect(c.end()).toBe('no end\n');
    expect(c.end()).toBe('');
  });
  it('shows a line without end once it passes 64 KiB, instead of keeping it', () => {
    const c = new ConsoleLines();
    expect(c.push(Buffer.alloc(60 * 1024, 'a'))).toBe('');
    expect(c.push(Buffer.alloc(8 * 1024, 'b')).length).toBe(68 * 1024);
    expect(c.end()).toBe('');
  });
  it('never passes an escape sequence, even one split across reads', () => {
    const c = new ConsoleLines();
    expect(c.push(Buffer.from('a\u001b'))).toBe('');
    expect(c.push(Buffer.from(']52;c;eA==\u0007\n'))).toBe('a\\x1b]52;c;eA==\\x07\n');
  });
});

describe('the console followed as QEMU writes it', () => {
  const noExec = { capture: () => Promise.reject(new Error('local: no exec')) };
  it('reads what came since the last read; a file not there yet is nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'm5dev-console-'));
    const f = followConsole(new LocalDirStorage(dir), noExec);
    expect((await f.next()).length).toBe(0);
    writeFileSync(join(dir, STORED.console), 'boot\n');
    expect((await f.next()).toString()).toBe('boot\n');
    writeFileSync(join(dir, STORED.console), 'boot\njob two\n');
    expect((await f.next()).toString()).toBe('job two\n');
    expect((await f.next()).length).toBe(0);
  });

  it('a console replaced by a new launch (shorter than what was read) is read from its start: a job\'s last lines are never skipped', async () => {
    // The last run's console read before QEMU truncated it: its length must not become the new one's offset.
    const dir = mkdtempSync(join(tmpdir(), 'm5dev-console-'));
    writeFileSync(join(dir, STORED.console), 'an earlier run\'s longer console\nhello from the job\n');
    const f = followConsole(new LocalDirStorage(dir), noExec);
    await f.next();
    writeFileSync(join(dir, STORED.console), 'boot\njob two\n');
    expect((await f.next()).toString()).toBe('boot\njob two\n');
  });

  it('on an engine that cannot share the file: beside QEMU (its shell command, run here), then from the storage once QEMU is gone; a replaced console likewise from its start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'm5dev-console-'));
    const file = join(dir, STORED.console);
    let qemuRuns = true;
    // The command the follower gives the VM container, run by sh here with the console's path put in.
    const capture = (cmd: string[]) => {
      if (!qemuRuns) return Promise.reject(new Error('the container has stopped'));
      const res = spawnSync(cmd[0]!, cmd.slice(1).map((a) => (a === IN_CONTAINER.console ? file : a)), { encoding: 'utf8' });
      return Promise.resolve({ exitCode: res.status ?? 1, stdout: res.stdout, stderr: res.stderr });
    };
    const storage = { clientPath: () => undefined, read: (name: string) => Promise.resolve(existsSync(join(dir, name)) ? readFileSync(join(dir, name)) : undefined) };
    const f = followConsole(storage, { capture });
    expect((await f.next()).length).toBe(0);
    writeFileSync(file, 'an earlier run\'s longer console\n');
    expect((await f.next()).toString()).toBe("an earlier run's longer console\n");
    writeFileSync(file, 'boot\n');
    expect((await f.next()).toString()).toBe('boot\n');
    writeFileSync(file, 'boot\njob two\n');
    qemuRuns = false;
    expect((await f.next()).toString()).toBe('job two\n');
    writeFileSync(file, 'new\n');
    expect((await f.next()).toString()).toBe('new\n');
  });
});

describe('a local file into the blob store', () => {
  it('named by its content, sparse, once; a store that has it copies nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'm5dev-localblob-'));
    const store = new BlobStore(layout(join(dir, 'home')));
    const img = join(dir, 'disk.img');
    writeFileSync(img, 'head');
    truncateSync(img, 64 << 20);
    const sha = createHash('sha256').update(readFileSync(img)).digest('hex');
    expect(await storeLocalFile(store, img)).toEqual({ sha256: sha, copied: true });
    expect(readFileSync(store.path(sha)).equals(readFileSync(img))).toBe(true);
    expect(statSync(store.path(sha)).blocks * 512).toBeLessThan(1 << 20);
    expect(await storeLocalFile(store, img)).toEqual({ sha256: sha, copied: false });
    expect(readdirSync(join(dir, 'home', 'tmp'))).toEqual([]);
  });
});

describe('checkpoints and init_param', () => {
  it('a checkpoint restores into the same machine wherever its instance lives: the portable key', () => {
    const cmd = (plugin: string) => ['qemu-system-aarch64', '-m', '2048', '-plugin', plugin, '-sandbox', 'on'];
    const a = portableKey({ image: 't:1', cmd: cmd('file=/p.so,base=0x10010000,dir=/instance,exit=poweroff,exits=2,checkpoint=pause,param=size=4'), targets: ['/instance', '/cache:ro'] });
    // How many exits end the job and what init_param answers are not the machine.
    expect(portableKey({ image: 't:1', cmd: cmd('file=/p.so,base=0x10010000,dir=/instance,exit=poweroff,checkpoint=pause'), targets: ['/instance', '/cache:ro'] })).toBe(a);
    // The m5ops base, the memory, the toolchain and the mounts are.
    expect(portableKey({ image: 't:1', cmd: cmd('file=/p.so,base=0x20000000,dir=/instance,exit=poweroff'), targets: ['/instance', '/cache:ro'] })).not.toBe(a);
    expect(portableKey({ image: 't:2', cmd: cmd('file=/p.so,base=0x10010000,dir=/instance,exit=poweroff'), targets: ['/instance', '/cache:ro'] })).not.toBe(a);
    expect(portableKey({ image: 't:1', cmd: cmd('file=/p.so,base=0x10010000,dir=/instance,exit=poweroff').map((x) => (x === '2048' ? '4096' : x)), targets: ['/instance', '/cache:ro'] })).not.toBe(a);
    expect(portableKey({ image: 't:1', cmd: cmd('file=/p.so,base=0x10010000,dir=/instance,exit=poweroff'), targets: ['/instance', '/cache:ro', '/kernels:ro'] })).not.toBe(a);
  });
  it('NAME:K names a checkpoint', () => {
    expect(parseCheckpointRef('run:1')).toEqual({ name: 'run', index: 1 });
    expect(parseCheckpointRef('job-2.a:12')).toEqual({ name: 'job-2.a', index: 12 });
    for (const bad of ['run', 'run:0', ':1', 'run:x', 'Run:1', 'run:1:2', '../x:1']) expect(() => parseCheckpointRef(bad), bad).toThrow(/is not NAME:K/);
  });
  it('init_param values: a key of up to 16 characters and a 64-bit value', () => {
    const bad = (w: string) => new Error(w);
    expect(parseM5opsParam('size=4', bad)).toEqual({ key: 'size', value: '4' });
    expect(parseM5opsParam('=0x10', bad)).toEqual({ key: '', value: '16' });
    expect(parseM5opsParam('sixteen-chars-ok=18446744073709551615', bad)).toEqual({ key: 'sixteen-chars-ok', value: '18446744073709551615' });
    for (const b of ['size', 'seventeen-chars-x=1', 'a,b=1', 'a b=1', 'k=18446744073709551616', 'k=-1', 'k=0x', 'k=1.5', 'k=\u0007']) expect(() => parseM5opsParam(b, bad), b).toThrow(/KEY=VALUE/);
  });
});
