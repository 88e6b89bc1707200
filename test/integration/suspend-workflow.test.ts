/**
 * The suspend workflow against a fake VM host (test/helpers/fake-vm-host.ts): the real workflow, the
 * real QMP client and a real instance directory, with "QEMU" scripted. It reaches what a real guest
 * rarely shows: a save that fails (a full disk, a refused migration, a lost RAM file) must resume the
 * guest and keep nothing half-saved; a save that completes must be committed and the VM stopped.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suspendInstance } from '../../src/workflows/suspend.js';
import type { LiveInstance } from '../../src/workflows/running.js';
import { LocalDirStorage } from '../../src/engine/storage.js';
import { instanceFiles, type InstanceState } from '../../src/vm/instance.js';
import { finishPending, isSuspended, readSaved, SAVED_FORMAT } from '../../src/vm/saved-state.js';
import { DiskFullError, ExitCode, VmStateError } from '../../src/errors.js';
import { runCleanups } from '../../src/cleanup.js';
import type { Engine } from '../../src/engine/engine.js';
import type { GuestSsh } from '../../src/ssh/client.js';
import { fakeVm, type Answer, type FakeVm } from '../helpers/fake-vm-host.js';
import { smallDisks } from '../helpers/small-disk.js';

let root: string;
let fake: FakeVm | undefined;
const disks = smallDisks();

afterEach(async () => {
  await fake?.close();
  fake = undefined;
  disks.unmountAll();
  rmSync(root, { recursive: true, force: true });
});

/** `instanceFsKiB`: the instance directory on a tmpfs of that size (a disk that fills up for real). */
async function setUp(answer: Answer, ramFile: boolean, instanceFsKiB?: number): Promise<{ live: LiveInstance; dir: string; tmpfs: string }> {
  root = mkdtempSync(join(tmpdir(), 'm5dev-suspend-wf-'));
  const dir = join(root, 'instance');
  const tmpfs = join(root, 'tmpfs');
  rmSync(dir, { recursive: true, force: true });
  if (instanceFsKiB) {
    mkdirSync(dir);
    disks.mount(dir, `${instanceFsKiB}k`);
  }
  const storage = new LocalDirStorage(dir);
  await storage.ensure();
  writeFileSync(join(dir, 'disk.qcow2'), 'disk');
  writeFileSync(join(dir, 'flash1.img'), 'vars');
  fake = await fakeVm({ instanceDir: dir, tmpfsDir: tmpfs, socketDir: root, answer });
  if (ramFile) writeFileSync(join(tmpfs, 'ram'), 'guest memory');
  const state = { name: 'fake', sshPort: 1, launchKey: 'key-1', ramFile } as InstanceState;
  const ssh = { capture: async () => ({ exitCode: 0, stdout: '', stderr: '' }) } as unknown as GuestSsh;
  const live: LiveInstance = {
    engine: undefined as unknown as Engine, // the workflow reaches the engine only through the host
    host: fake.host,
    home: { root } as LiveInstance['home'],
    files: instanceFiles(dir),
    state,
    storage,
    name: 'fake',
    vm: fake.vm,
    ssh,
  };
  return { live, dir, tmpfs };
}

const migrating = (status: string, extra: object = {}): Answer => (cmd) => (cmd === 'query-migrate' ? { return: { status, ...extra } } : cmd === 'quit' ? undefined : { return: {} });

/** Nothing of a save is left: no state, no memory, no record, no temporary file. */
const savedFiles = (dir: string) => readdirSync(dir).filter((f) => /^(vmstate|ram)/.test(f));

describe('suspend, against a fake VM host', () => {
  it('commits a completed save (stream): paused before the migration, record written last, VM stopped, never resumed', async () => {
    const { live, dir } = await setUp(migrating('completed'), false);
    const res = await suspendInstance(live, 10);
    expect(res.bytes).toBe('device state'.length);
    expect(res.synced).toBe(true);
    const q = fake!.qmp;
    expect(q.indexOf('stop')).toBeGreaterThan(-1);
    expect(q.indexOf('stop')).toBeLessThan(q.indexOf('migrate'));
    expect(q).not.toContain('cont');
    expect(q).not.toContain('migrate-set-capabilities'); // a stream carries the RAM: no x-ignore-shared
    expect(q.at(-1)).toBe('quit');
    expect(fake!.removed()).toBe(true);
    expect(savedFiles(dir).sort()).toEqual(['vmstate', 'vmstate.json']);
    const record = await readSaved(live.storage);
    expect(record).toMatchObject({ format: SAVED_FORMAT.stream, launchKey: 'key-1', bytes: 'device state'.length });
    expect(record!.stamps.map((s) => s.file).sort()).toEqual(['disk.qcow2', 'flash1.img']);
  });

  it('a complete save whose commit is cut short after QEMU quit (the record cannot be written) is finished by the next up, not dropped', async () => {
    const { live, dir } = await setUp(migrating('completed'), true);
    // The instance's storage refuses the record once: the state is renamed into place, then the commit stops.
    const real = live.storage;
    let refused = false;
    const failing = Object.create(real) as typeof real;
    failing.write = async (files) => {
      if (!refused && files.some((f) => f.name === 'vmstate.json.tmp')) {
        refused = true;
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      }
      return real.write(files);
    };
    const err = await suspendInstance({ ...live, storage: failing }, 10).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(fake!.qmp.at(-1)).toBe('quit');
    expect(savedFiles(dir).sort()).toEqual(['ram', 'vmstate', 'vmstate.pending.json']);
    expect(await readSaved(real)).toBeUndefined();
    // The next up, with no VM running: the commit is finished (the record written last), the mark gone.
    const record = await finishPending(real);
    expect(record).toMatchObject({ format: SAVED_FORMAT.ramFile, launchKey: 'key-1', bytes: expect.any(Number) });
    expect(record!.stamps.map((st) => st.file).sort()).toEqual(['disk.qcow2', 'flash1.img']);
    expect(await readSaved(real)).toEqual(record);
    expect(savedFiles(dir).sort()).toEqual(['ram', 'vmstate', 'vmstate.json']);
    // Nothing pending: nothing to finish.
    expect(await finishPending(real)).toBeUndefined();
  });

  it('a pending mark whose files are not all there finishes nothing, and a normal commit leaves no mark', async () => {
    const { live, dir } = await setUp(migrating('completed'), false);
    await suspendInstance(live, 10);
    expect(savedFiles(dir)).not.toContain('vmstate.pending.json');
    writeFileSync(join(dir, 'vmstate.pending.json'), JSON.stringify({ format: SAVED_FORMAT.ramFile, launchKey: 'k', savedAt: 'then', saveMs: 1 }));
    rmSync(join(dir, 'vmstate.json'));
    expect(await finishPending(live.storage)).toBeUndefined(); // format 2 needs the RAM file, and there is none
    expect(existsSync(join(dir, 'vmstate.json'))).toBe(false);
  });

  it('commits a completed save with a RAM file: the RAM copied out of the tmpfs beside the device state', async () => {
    const { live, dir } = await setUp(migrating('completed'), true);
    await suspendInstance(live, 10);
    expect(fake!.qmp[1]).toBe('migrate-set-capabilities');
    expect(fake!.execs.some((c) => c[0] === 'cp' && c.includes('--sparse=always'))).toBe(true);
    expect(savedFiles(dir).sort()).toEqual(['ram', 'vmstate', 'vmstate.json']);
    expect((await readSaved(live.storage))?.format).toBe(SAVED_FORMAT.ramFile);
  });

  it('a save that fails on a full disk resumes the guest, keeps nothing and says so (exit code of a full disk)', async () => {
    const { live, dir } = await setUp(migrating('failed', { 'error-desc': 'Unable to write to file: No space left on device' }), false);
    const err = await suspendInstance(live, 10).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiskFullError);
    const q = fake!.qmp;
    expect(q.slice(-3)).toEqual(['qmp_capabilities', 'migrate_cancel', 'cont']);
    expect(fake!.removed()).toBe(false);
    expect(fake!.exited()).toBe(false);
    expect(savedFiles(dir)).toEqual([]);
    expect(await isSuspended(live.storage)).toBe(false);
  });

  it('a refused migration is a VmStateError naming QEMU\'s reason; the guest runs on', async () => {
    const answer: Answer = (cmd) => (cmd === 'migrate' ? { error: { class: 'GenericError', desc: 'a device refuses migration' } } : { return: {} });
    const { live, dir } = await setUp(answer, false);
    const err = await suspendInstance(live, 10).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmStateError);
    expect((err as Error).message).toMatch(/a device refuses migration/);
    expect(fake!.qmp.at(-1)).toBe('cont');
    expect(fake!.removed()).toBe(false);
    expect(savedFiles(dir)).toEqual([]);
  });

  it('a save QEMU reports failed (not a full disk) is a VmStateError (exit 13) with its reason; the guest runs on, nothing kept', async () => {
    const { live, dir } = await setUp(migrating('failed', { 'error-desc': 'a device went away' }), false);
    const err = await suspendInstance(live, 10).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmStateError);
    expect((err as VmStateError).exitCode).toBe(ExitCode.vmStateFailed);
    expect((err as Error).message).toBe('saving the guest state failed: a device went away');
    expect(fake!.qmp.slice(-2)).toEqual(['migrate_cancel', 'cont']);
    expect(fake!.removed()).toBe(false);
    expect(savedFiles(dir)).toEqual([]);
  });

  it('a RAM file that cannot be copied out fails the suspend, resumes the guest and drops the device state', async () => {
    const { live, dir, tmpfs } = await setUp(migrating('completed'), true);
    rmSync(join(tmpfs, 'ram'));
    const err = await suspendInstance(live, 10).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmStateError);
    expect((err as Error).message).toMatch(/saving the guest's RAM failed/);
    expect(fake!.qmp.at(-1)).toBe('cont');
    expect(fake!.removed()).toBe(false);
    expect(savedFiles(dir)).toEqual([]);
    expect(existsSync(join(dir, 'vmstate.tmp'))).toBe(false);
  });

  it('a RAM file the instance\'s disk has no room for: a full disk (exit 16), the guest resumed, nothing half-saved', async () => {
    const { live, dir, tmpfs } = await setUp(migrating('completed'), true, 512);
    writeFileSync(join(tmpfs, 'ram'), randomBytes(2 * 2 ** 20)); // no holes: 2 MiB of data onto 512 KiB
    const err = await suspendInstance(live, 10).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiskFullError);
    expect((err as DiskFullError).exitCode).toBe(ExitCode.diskFull);
    expect((err as Error).message).toBe('No space left on the device while saving the guest\'s RAM; the guest keeps running');
    expect(fake!.qmp.at(-1)).toBe('cont');
    expect(fake!.removed()).toBe(false);
    expect(savedFiles(dir)).toEqual([]);
    expect(await isSuspended(live.storage)).toBe(false);
  });

  it('Ctrl-C during a save that never ends: the cancel ends the save\'s session (QEMU takes one client at a time), resumes the guest, keeps nothing', async () => {
    const { live, dir } = await setUp(migrating('active'), false);
    const suspending = suspendInstance(live, 120).catch((e: unknown) => e);
    const deadline = Date.now() + 20_000;
    while (!fake!.qmp.includes('query-migrate')) {
      if (Date.now() > deadline) throw new Error(`the save never started polling: ${fake!.qmp.join(' ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await runCleanups(); // what Ctrl-C runs
    const err = await suspending;
    expect(err).toBeInstanceOf(VmStateError);
    const q = fake!.qmp;
    expect(q.slice(q.indexOf('migrate_cancel'))).toContain('cont');
    expect(q.lastIndexOf('cont')).toBeGreaterThan(q.lastIndexOf('query-migrate'));
    expect(fake!.removed()).toBe(false);
    expect(savedFiles(dir)).toEqual([]);
  });

  it('refuses an instance whose launch was never recorded, before touching the guest', async () => {
    const { live } = await setUp(migrating('completed'), false);
    const err = await suspendInstance({ ...live, state: { ...live.state, launchKey: undefined } }, 10).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmStateError);
    expect(fake!.qmp).toEqual([]);
  });
});
