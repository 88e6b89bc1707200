/**
 * gem5's checkpoints: the guest's `m5 checkpoint` pauses the VM (the plugin's checkpoint=pause, under
 * `m5dev run` and under `up --m5ops-checkpoints`), and m5dev saves it as a suspend would (the device
 * state and RAM by QEMU's migration, a sparse copy of the RAM file, the instance's disk and the UEFI
 * variables, all while the guest stands still), then lets it run on. Each checkpoint is a directory
 * of the instance, checkpoints/K, with a record; `run --from-checkpoint NAME:K` and `up
 * --from-checkpoint NAME:K` copy one into a new instance and resume it there (the launch phase
 * checks that the machine is the same). Under `run` the job's watcher saves them; under `up`, the
 * instance's checkpoint agent (checkpoint-agent.ts).
 */
import { VmStateError, UsageError, isDiskFull, DiskFullError } from '../errors.js';
import { IN_CONTAINER, RAM_TMPFS, STORED, readState, instanceFiles, type InstanceState } from '../vm/instance.js';
import { withQmp } from '../vm/qmp.js';
import { SAVED_FORMAT, guestStamps, saveStream, saveSteps, type SavedFormat, type SavedRecord } from '../vm/saved-state.js';
import { instanceDir, type HomeLayout } from '../paths.js';
import { existsSync } from 'node:fs';
import type { Storage } from '../engine/storage.js';
import type { Toolchain } from './image-build.js';
import { writer } from '../docker/containers.js';
import { existingPlacement } from '../vmhost/placement.js';
import type { RunningVm } from '../vmhost/vm-host.js';

export const CHECKPOINTS = 'checkpoints';
const RECORD = 'record.json';
/** What a checkpoint holds, beside its record: the names in the checkpoint directory and in the instance (the disk: the one the instance has). */
const FILES = [
  { saved: 'vmstate', instance: STORED.vmState },
  { saved: 'ram', instance: STORED.ram, only: SAVED_FORMAT.ramFile },
  { saved: 'disk.qcow2', instance: STORED.diskOverlay, disk: 'overlay' },
  { saved: 'disk.raw', instance: STORED.diskRaw, disk: 'raw' },
  { saved: 'flash1.img', instance: STORED.flash1, optional: true },
] as const;

/** The files of a checkpoint of this format and disk kind. Pure. */
export function checkpointFiles(format: SavedFormat, disk: 'raw' | 'overlay'): { saved: string; instance: string; optional: boolean }[] {
  return FILES.filter((f) => (!('only' in f) || f.only === format) && (!('disk' in f) || f.disk === disk)).map((f) => ({ saved: f.saved, instance: f.instance, optional: 'optional' in f }));
}

export interface CheckpointRecord {
  index: number;
  takenAt: string;
  format: SavedFormat;
  /** The machine it restores into (saved-state.ts portableKey). */
  portableKey: string;
  /** The guest's virtual clock at the checkpoint op. */
  vclockNs: number;
  /** How long the guest stood still for it. */
  pauseMs: number;
  /** The job's disk image, or the instance's cloud image (its digest: the base a saved overlay needs), and its format. */
  imageSha256: string;
  imageFormat: 'raw' | 'qcow2';
  /** The instance's disk kind (absent: a run's, always an overlay). */
  disk?: 'raw' | 'overlay';
  /** The host time of the guest's op (the m5ops log's), so that an op is saved once. */
  opTime?: number;
  /** An `up` instance's state when it was taken: what `up --from-checkpoint` makes the new instance of (absent: a run's). */
  instance?: InstanceState;
}

/** What a checkpoint is taken of: the VM, where its files live, its state and its machine. */
export interface CheckpointTarget {
  vm: RunningVm;
  storage: Storage;
  state: InstanceState;
  /** The machine without the instance's own paths (saved-state.ts portableKey): a restore needs the same. */
  portableKey: string;
}

/** A launched VM as a checkpoint's target. */
export function checkpointTarget(running: { vm: RunningVm; found: { placement: { storage: Storage } }; state: InstanceState; portableKey: string }): CheckpointTarget {
  return { vm: running.vm, storage: running.found.placement.storage, state: running.state, portableKey: running.portableKey };
}

/** The guest's op that asked for a checkpoint, as the m5ops log has it. */
export interface CheckpointAsk {
  vclockNs: number;
  time: number;
}

const dirOf = (index: number) => `${CHECKPOINTS}/${index}`;

/** What a checkpoint's save leaves free on the instance's filesystem (beside its copies). */
export const CHECKPOINT_RESERVE = 1024 * 1048576;

/** How many checkpoints a run saves unless told otherwise (each holds the guest's memory and disk overlay). */
export const DEFAULT_MAX_CHECKPOINTS = 8;

/** The paused guest runs on (a checkpoint let go, or after its save). */
export async function continueGuest(vm: RunningVm): Promise<void> {
  await withQmp(() => vm.monitor(30), (q) => q.execute('cont'));
}

/** Save the guest the plugin paused at its Kth checkpoint op, then let it run on (also when the save failed). */
export async function takeCheckpoint(target: CheckpointTarget, index: number, ask: CheckpointAsk): Promise<CheckpointRecord> {
  const { vm, storage, state } = target;
  const disk = state.job ? 'overlay' : state.disk;
  const inVm = `/instance/${dirOf(index)}`;
  const format = state.ramFile === true ? SAVED_FORMAT.ramFile : SAVED_FORMAT.stream;
  const t0 = Date.now();
  const sh = async (cmd: string[], what: string) => {
    const r = await vm.capture(cmd);
    if (r.exitCode === 0) return;
    if (isDiskFull(r.stderr)) throw new DiskFullError(`saving checkpoint ${index}`, undefined, r.stderr.trim());
    throw new VmStateError(`saving checkpoint ${index} failed: ${what}: ${r.stderr.trim()}`);
  };
  // Its directory made from this side (the user's, on a local directory: QEMU's container writes the files in it as root).
  await storage.write([{ name: `${dirOf(index)}/.saving`, data: '' }]);
  let saved = false;
  try {
    // A save needs room for what it copies (the guest's memory, the blocks its disk holds, the UEFI
    // variables) and leaves CHECKPOINT_RESERVE free after it: refused before anything is written. The
    // guest fills its disk at will, so its allocation counts, not a guess.
    const { bytes: free, where } = await storage.free();
    const copied = [...(await storage.stat(checkpointFiles(format, disk).filter((f) => f.saved !== 'ram' && f.saved !== 'vmstate').map((f) => f.instance))).values()];
    const need = state.memoryMiB * 1048576 + copied.reduce((n, f) => n + f.allocated, 0) + CHECKPOINT_RESERVE;
    if (free < need) throw new DiskFullError(`saving checkpoint ${index}: ${Math.floor(free / 1048576)} MiB free in ${where}, ${Math.ceil(need / 1048576)} MiB needed (the guest's memory and disk, and ${CHECKPOINT_RESERVE / 1048576} MiB left free)`);
    const stream = saveStream(`${inVm}/vmstate`);
    const results = await withQmp(() => vm.monitor(300, [stream]), (q) => q.run(saveSteps(format, stream), async () => undefined));
    const status = results.at(-1) as { status?: string; 'error-desc'?: string };
    if (status.status !== 'completed') throw new VmStateError(`saving checkpoint ${index} failed: ${status['error-desc'] ?? status.status ?? ''}`);
    // The guest stands still and QEMU has flushed its disks: the RAM file, the overlay and the variables are consistent.
    if (format === SAVED_FORMAT.ramFile) await sh(['cp', '--sparse=always', RAM_TMPFS.file, `${inVm}/ram`], 'the RAM file');
    const diskFile = checkpointFiles(format, disk).find((f) => f.saved.startsWith('disk.'));
    if (diskFile) await sh(['cp', '--sparse=always', `/instance/${diskFile.instance}`, `${inVm}/${diskFile.saved}`], `the disk (${disk})`);
    await sh(['sh', '-c', '[ ! -e "$1" ] || cp "$1" "$2"', 'sh', IN_CONTAINER.flash1, `${inVm}/flash1.img`], 'the UEFI variables');
    saved = true;
  } finally {
    // Migration left QEMU in postmigrate: `cont` takes the disks back and runs the guest on.
    await continueGuest(vm);
    // A checkpoint that did not save whole is not kept (it would hold gigabytes of nothing usable).
    if (!saved) await storage.removeTree(dirOf(index)).catch(() => undefined);
  }
  const record: CheckpointRecord = {
    index,
    takenAt: new Date().toISOString(),
    format,
    portableKey: target.portableKey,
    vclockNs: ask.vclockNs,
    pauseMs: Date.now() - t0,
    imageSha256: state.imageSha256,
    imageFormat: state.job?.format ?? 'qcow2',
    disk,
    opTime: ask.time,
    instance: state.job ? undefined : state,
  };
  await storage.write([{ name: `${dirOf(index)}/${RECORD}`, data: `${JSON.stringify(record, null, 2)}\n` }]);
  await storage.remove([`${dirOf(index)}/.saving`]);
  return record;
}

/** The checkpoints an instance holds (complete ones: those with a record), in order. */
export async function listCheckpoints(storage: Storage): Promise<CheckpointRecord[]> {
  const files = await storage.listTree(CHECKPOINTS);
  const out: CheckpointRecord[] = [];
  for (const f of files.filter((x) => x.path.endsWith(`/${RECORD}`))) {
    const raw = await storage.read(`${CHECKPOINTS}/${f.path}`);
    try {
      const r = JSON.parse(raw?.toString('utf8') ?? '') as CheckpointRecord;
      if (Number.isInteger(r.index) && typeof r.portableKey === 'string') out.push(r);
    } catch {
      // a damaged record: not a checkpoint
    }
  }
  return out.sort((a, b) => a.index - b.index);
}

/** A checkpoint by its instance's name and its number (`NAME:K`). */
export interface CheckpointRef {
  name: string;
  index: number;
}

/** `NAME:K` (the instance and the checkpoint's number). Pure. */
export function parseCheckpointRef(text: string): CheckpointRef {
  const m = /^([a-z0-9][a-z0-9._-]*):([1-9]\d{0,5})$/.exec(text);
  if (!m) throw new UsageError(`--from-checkpoint ${text} is not NAME:K`, 'e.g. --from-checkpoint run:1 (`m5dev checkpoints --name run` lists them).');
  return { name: m[1] ?? '', index: Number(m[2]) };
}

/** A checkpoint to restore: where it lives and its record. */
export interface CheckpointSource {
  storage: Storage;
  record: CheckpointRecord;
}

/** A checkpoint of a run's job (`kind: 'run'`, for `run --from-checkpoint`) or of an up instance (`'up'`, for `up --from-checkpoint`). */
export async function findCheckpoint(toolchain: Toolchain, home: HomeLayout, ref: CheckpointRef, kind: 'run' | 'up' = 'run'): Promise<CheckpointSource> {
  const dir = instanceDir(home, ref.name);
  const state = existsSync(dir) ? readState(instanceFiles(dir)) : undefined;
  const other = kind === 'run' ? 'up' : 'run';
  if (!state) throw new UsageError(`no instance ${ref.name}`, `Checkpoints are taken by \`m5dev ${kind}\`${kind === 'up' ? ' --m5ops-checkpoints' : ''} guests: \`m5dev checkpoints --name NAME\` lists them.`);
  if ((state.job !== undefined) !== (kind === 'run')) {
    throw new UsageError(`instance ${ref.name} is ${kind === 'run' ? 'not a run job' : "a run job (no SSH to attach to)"}`, `Restore its checkpoints with \`m5dev ${other} --from-checkpoint ${ref.name}:${ref.index}\`.`);
  }
  const { storage } = existingPlacement(toolchain.engine, home, instanceFiles(dir), state);
  const record = (await listCheckpoints(storage)).find((c) => c.index === ref.index);
  if (!record) throw new UsageError(`instance ${ref.name} has no checkpoint ${ref.index}`, `\`m5dev checkpoints --name ${ref.name}\` lists them.`);
  return { storage, record };
}

/**
 * The checkpoint's files into `storage` (a new job's instance) under the names a resume reads, by a
 * tool container that mounts both, and the saved-state record that makes the launch resume them.
 */
export async function copyCheckpointIn(toolchain: Toolchain, home: HomeLayout, source: CheckpointSource, storage: Storage, owner?: { uid: number; gid: number }, alsoFromInstance: string[] = []): Promise<SavedRecord> {
  const { record } = source;
  const from = `/from/${dirOf(record.index)}`;
  const copies = [
    ...checkpointFiles(record.format, record.disk ?? 'overlay').flatMap((f) => [`${from}/${f.saved}`, `/instance/${f.instance}`, f.optional ? '1' : '0']),
    // Files of the source instance itself (`up --from-checkpoint`: its firmware and seed), each as it is now.
    ...alsoFromInstance.flatMap((name) => [`/from/${name}`, `/instance/${name}`, '1']),
  ];
  await toolchain.engine.runTool({
    image: toolchain.tag,
    // Each pair: a sparse copy; a missing optional file (no UEFI variables: a direct kernel boot) is skipped.
    cmd: ['sh', '-c', 'while [ $# -gt 0 ]; do if [ -e "$1" ] || [ "$3" = 0 ]; then cp --sparse=always "$1" "$2" || exit 1; fi; shift 3; done', 'sh', ...copies],
    binds: [storage.bind('/instance'), source.storage.bind('/from', true)],
    home: home.root,
    confined: writer(owner),
    description: `Copying checkpoint ${record.index} in`,
  });
  return { format: record.format, launchKey: '', stamps: await guestStamps(storage), bytes: 0, savedAt: record.takenAt, saveMs: record.pauseMs };
}
