/**
 * The middle tier of up's phases (issue 37): the real launch phase and run's checkpoint, against the
 * fake VM host and its scripted QMP (test/helpers/fake-vm-host.ts), on a real instance directory.
 * No QEMU, no engine: seconds. It reaches what a real guest rarely shows: a boot, a resume, a saved
 * state QEMU cannot load (booted afresh, with a note), a saved state of another launch (refused),
 * and a checkpoint whose save fails (the guest still runs on).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalDirStorage } from '../../src/engine/storage.js';
import { instanceFiles, readState, STORED } from '../../src/vm/instance.js';
import { guestStamps, SAVED_FORMAT, type SavedRecord } from '../../src/vm/saved-state.js';
import { DEFAULTS } from '../../src/config.js';
import { layout } from '../../src/paths.js';
import { cleanupScope } from '../../src/cleanup.js';
import { DiskFullError, UsageError, VmStateError } from '../../src/errors.js';
import { silentReporter } from '../../src/workflows/report.js';
import { launch } from '../../src/workflows/up/launch.js';
import { baseState, type Prepared } from '../../src/workflows/up/prepare.js';
import type { Found } from '../../src/workflows/up/instance.js';
import type { Toolchain } from '../../src/workflows/image-build.js';
import { CHECKPOINT_RESERVE, checkpointTarget, takeCheckpoint } from '../../src/workflows/checkpoint.js';
import type { VmLaunch } from '../../src/vmhost/vm-host.js';
import { fakeVm, type Answer, type FakeVm } from '../helpers/fake-vm-host.js';
import { freePort } from '../helpers/fixture.js';

let root: string;
let fake: FakeVm | undefined;

afterEach(async () => {
  await fake?.close();
  fake = undefined;
  rmSync(root, { recursive: true, force: true });
});

const answering = (over: Record<string, object> = {}): Answer => (cmd) => over[cmd] ?? (cmd === 'query-status' ? { return: { status: 'paused' } } : cmd === 'query-migrate' ? { return: { status: 'completed' } } : { return: {} });

async function setUp(answer: Answer): Promise<{ found: Found; dir: string; launches: VmLaunch[]; fresh: () => Prepared }> {
  root = mkdtempSync(join(tmpdir(), 'm5dev-up-phases-'));
  const dir = join(root, 'instance');
  const storage = new LocalDirStorage(dir);
  await storage.ensure();
  writeFileSync(join(dir, 'disk.qcow2'), 'disk');
  writeFileSync(join(dir, 'flash1.img'), 'vars');
  const launches: VmLaunch[] = [];
  fake = await fakeVm({ instanceDir: dir, tmpfsDir: join(root, 'tmpfs'), socketDir: root, answer, launches });
  writeFileSync(join(root, 'tmpfs', 'ram'), 'guest memory');
  const config = { ...DEFAULTS, disk: 'overlay' as const, sshPort: await freePort() };
  const toolchain = { tag: 'm5dev/toolchain:test' } as Toolchain; // the launch reaches the engine only for shares (none here)
  const found: Found = {
    request: { name: 'fake', home: layout(root), config, explicit: new Set(), noResume: false },
    toolchain,
    files: instanceFiles(dir),
    placement: { host: fake.host, storage, blobs: new LocalDirStorage(join(root, 'blobs')), kernels: new LocalDirStorage(join(root, 'kernels')), record: { host: 'unix:///fake', files: 'shared' } },
    config,
    state: undefined,
    stored: new Map(),
    kernel: undefined,
    notes: [],
  };
  const fresh = (): Prepared => ({ found: { ...found, notes: [] }, state: readState(found.files) ?? baseState('fake', config, 'a'.repeat(64)), saved: undefined });
  return { found, dir, launches, fresh };
}

/** A saved state (RAM-file format) in the instance, recorded for `launchKey`. */
async function saveState(found: Found, dir: string, launchKey: string): Promise<SavedRecord> {
  writeFileSync(join(dir, STORED.vmState), 'device state');
  writeFileSync(join(dir, STORED.ram), 'saved memory');
  const record: SavedRecord = { format: SAVED_FORMAT.ramFile, launchKey, stamps: await guestStamps(found.placement.storage), bytes: 24, savedAt: 'then', saveMs: 1 };
  writeFileSync(join(dir, STORED.vmStateRecord), JSON.stringify(record));
  return record;
}

describe("up's launch phase, against a fake VM host", () => {
  it('boots: one launch of QEMU, not waiting for a state; the launch recorded (key, port) before it starts', async () => {
    const { found, launches, fresh } = await setUp(answering());
    await using scope = cleanupScope('test');
    const running = await launch(silentReporter, fresh(), scope);
    expect(launches).toHaveLength(1);
    expect(launches[0]!.cmd[0]).toBe('qemu-system-aarch64');
    expect(launches[0]!.cmd).not.toContain('-incoming');
    expect(running).toMatchObject({ resumed: false, sshPort: found.config.sshPort });
    const state = readState(found.files)!;
    expect(state).toMatchObject({ sshPort: found.config.sshPort, image: 'm5dev/toolchain:test', accel: 'tcg' });
    expect(state.launchKey).toMatch(/^[0-9a-f]{64}$/);
    expect(fake!.qmp).toEqual([]);
  });

  it('resumes a saved state of the same launch: loaded, its record consumed before the guest runs, its memory files dropped', async () => {
    const { found, dir, launches, fresh } = await setUp(answering());
    await using scope = cleanupScope('test');
    await launch(silentReporter, fresh(), scope);
    const record = await saveState(found, dir, readState(found.files)!.launchKey!);
    const running = await launch(silentReporter, { ...fresh(), saved: record }, scope);
    expect(running.resumed).toBe(true);
    // QEMU waits for the state (the RAM file copied into its tmpfs first), then loads it and runs.
    expect(launches[1]!.cmd.slice(0, 2)).toEqual(['sh', '-c']);
    expect(launches[1]!.cmd).toContain('-incoming');
    expect(fake!.qmp).toEqual(['qmp_capabilities', 'migrate-set-capabilities', 'getfd', 'migrate-incoming', 'query-status', 'cont']);
    expect(existsSync(join(dir, STORED.vmStateRecord))).toBe(false);
    await running.dropping;
    expect(readdirSync(dir).filter((f) => /^(vmstate|ram)/.test(f))).toEqual([]);
  });

  it('a saved state QEMU cannot load is dropped and the guest boots afresh, with a note that says why', async () => {
    const { found, dir, launches, fresh } = await setUp(answering({ 'migrate-incoming': { error: { class: 'GenericError', desc: 'load of migration failed: Invalid argument' } } }));
    await using scope = cleanupScope('test');
    await launch(silentReporter, fresh(), scope);
    const record = await saveState(found, dir, readState(found.files)!.launchKey!);
    const prepared = { ...fresh(), saved: record };
    const running = await launch(silentReporter, prepared, scope);
    expect(running.resumed).toBe(false);
    expect(launches).toHaveLength(3); // the first boot, the resume QEMU refused, the fresh boot
    expect(launches[2]!.cmd).not.toContain('-incoming');
    expect(prepared.found.notes.join('; ')).toMatch(/could not resume \(.*Invalid argument.*\); booted afresh/);
    expect(readdirSync(dir).filter((f) => /^(vmstate|ram)/.test(f))).toEqual([]);
  });

  it('a checkpoint QEMU cannot load is an error, never a boot afresh on its disk', async () => {
    const { found, dir, launches, fresh } = await setUp(answering({ 'migrate-incoming': { error: { class: 'GenericError', desc: 'load of migration failed: Invalid argument' } } }));
    await using scope = cleanupScope('test');
    const booted = await launch(silentReporter, fresh(), scope, { kind: 'job', exits: 1 });
    const record = await saveState(found, dir, '');
    const err = await launch(silentReporter, { ...fresh(), saved: record, restore: { portableKey: booted.portableKey } }, scope, { kind: 'job', exits: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmStateError);
    expect((err as Error).message).toMatch(/the checkpoint could not be resumed: .*Invalid argument/);
    expect(launches).toHaveLength(2); // the first boot and the refused resume: no boot after it
  });

  it('a saved state of another launch (other settings) is refused, and nothing is started or dropped', async () => {
    const { found, dir, launches, fresh } = await setUp(answering());
    await using scope = cleanupScope('test');
    const record = await saveState(found, dir, 'another-launch');
    const err = await launch(silentReporter, { ...fresh(), saved: record }, scope).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/suspended/);
    expect(launches).toEqual([]);
    expect(existsSync(join(dir, STORED.vmState))).toBe(true);
  });
});

describe("run's checkpoint, against a fake VM host", () => {
  it('saves memory, RAM file, disk overlay and UEFI variables into checkpoints/K, then lets the guest run on', async () => {
    const { dir, fresh } = await setUp(answering());
    await using scope = cleanupScope('test');
    const p = fresh();
    const running = await launch(silentReporter, { ...p, state: { ...p.state, job: { image: 'job.img', format: 'qcow2' } } }, scope, { kind: 'job', exits: 2 });
    const record = await takeCheckpoint(checkpointTarget(running), 1, { vclockNs: 42, time: 7 });
    expect(record).toMatchObject({ index: 1, format: SAVED_FORMAT.ramFile, vclockNs: 42, opTime: 7, portableKey: running.portableKey, disk: 'overlay' });
    expect(record.instance).toBeUndefined(); // a run's: restored by run, which needs no instance state
    expect(readdirSync(join(dir, 'checkpoints', '1')).sort()).toEqual(['disk.qcow2', 'flash1.img', 'ram', 'record.json', 'vmstate']);
    expect(readFileSync(join(dir, 'checkpoints', '1', 'ram'), 'utf8')).toBe('guest memory');
    const q = fake!.qmp;
    expect(q.indexOf('migrate')).toBeGreaterThan(-1);
    expect(q.at(-1)).toBe('cont');
  });

  it("an up instance's (--m5ops-checkpoints, the default raw disk): its raw disk and its state at the time are kept, for up --from-checkpoint", async () => {
    const { dir, fresh, launches } = await setUp(answering());
    writeFileSync(join(dir, 'disk.raw'), 'raw disk');
    await using scope = cleanupScope('test');
    const prepared = fresh();
    const cloud = { ...prepared, found: { ...prepared.found, config: { ...prepared.found.config, disk: 'raw' as const, m5opsCheckpoints: true } }, state: { ...prepared.state, disk: 'raw' as const } };
    const running = await launch(silentReporter, cloud, scope);
    // The plugin was told to pause at a checkpoint op; the launch recorded its machine.
    expect(launches.at(-1)?.cmd.join(' ')).toMatch(/checkpoint=pause/);
    expect(running.state.portableKey).toBe(running.portableKey);
    expect(running.state.m5ops?.checkpoints).toBe(true);
    const record = await takeCheckpoint(checkpointTarget(running), 3, { vclockNs: 5, time: 9 });
    expect(record).toMatchObject({ index: 3, disk: 'raw', opTime: 9, instance: { name: 'fake', disk: 'raw', m5ops: { checkpoints: true } } });
    expect(readdirSync(join(dir, 'checkpoints', '3')).sort()).toEqual(['disk.raw', 'flash1.img', 'ram', 'record.json', 'vmstate']);
    expect(readFileSync(join(dir, 'checkpoints', '3', 'disk.raw'), 'utf8')).toBe('raw disk');
  });

  it("a checkpoint the filesystem has no room for (the guest's memory, the blocks its disk holds, the reserve) is refused before anything is copied, and the guest runs on", async () => {
    const { dir, fresh } = await setUp(answering());
    // A raw disk the guest filled with 64 MiB: its blocks count, not its apparent size.
    writeFileSync(join(dir, 'disk.raw'), Buffer.alloc(64 * 1048576, 1));
    await using scope = cleanupScope('test');
    const prepared = fresh();
    const cloud = { ...prepared, found: { ...prepared.found, config: { ...prepared.found.config, disk: 'raw' as const, m5opsCheckpoints: true } }, state: { ...prepared.state, disk: 'raw' as const } };
    const running = await launch(silentReporter, cloud, scope);
    const target = checkpointTarget(running);
    // Room for the memory and the reserve (what a save asked for before), not for the disk too: the filesystem as it would be.
    const room = running.state.memoryMiB * 1048576 + CHECKPOINT_RESERVE + 32 * 1048576;
    const withFree = (bytes: number) => {
      const st = new LocalDirStorage((target.storage as LocalDirStorage).localDir);
      st.free = async () => ({ bytes, where: 'the test filesystem' });
      return st;
    };
    const storage = withFree(room);
    const err = await takeCheckpoint({ ...target, storage }, 1, { vclockNs: 0, time: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiskFullError);
    expect((err as Error).message).toMatch(/saving checkpoint 1: \d+ MiB free in the test filesystem, \d+ MiB needed \(the guest's memory and disk, and 1024 MiB left free\)/);
    expect(fake!.qmp).not.toContain('migrate');
    expect(fake!.qmp.at(-1)).toBe('cont');
    expect(existsSync(join(dir, 'checkpoints', '1'))).toBe(false);
    // With that room and 64 MiB more, it is saved.
    expect(await takeCheckpoint({ ...target, storage: withFree(room + 64 * 1048576) }, 1, { vclockNs: 0, time: 0 })).toMatchObject({ index: 1, disk: 'raw' });
  });

  it('a checkpoint whose save fails is an error, and the guest still runs on', async () => {
    const { fresh } = await setUp(answering({ 'query-migrate': { return: { status: 'failed', 'error-desc': 'No space left on device' } } }));
    await using scope = cleanupScope('test');
    const running = await launch(silentReporter, fresh(), scope, { kind: 'job', exits: 1 });
    const err = await takeCheckpoint(checkpointTarget(running), 1, { vclockNs: 0, time: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmStateError);
    expect((err as Error).message).toMatch(/checkpoint 1 failed: No space left/);
    expect(fake!.qmp.at(-1)).toBe('cont');
    // Nothing half-saved is kept.
    expect(existsSync(join(root, 'instance', 'checkpoints', '1'))).toBe(false);
  });
});
