/** An instance's files on the host and its saved state (state.json). */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { INSTANCE_NAME_RE, instanceDir, type HomeLayout } from '../paths.js';
import { InstanceNotFoundError, UsageError } from '../errors.js';
import type { InstanceEngine } from '../engine/engine.js';
import { shareExports, type NinepExport, type Share } from './shares.js';

export interface InstanceState {
  name: string;
  sshPort: number;
  imageSha256: string;
  imageUrl: string;
  disk: 'raw' | 'overlay';
  cpus: number;
  memoryMiB: number;
  accel: string;
  cpu: string;
  /** Release of the directly booted kernel, and the version it was built as (absent: the image's own kernel). */
  kernel?: string;
  kernelVersion?: string;
  instanceId?: string;
  seedHash?: string;
  /** Guest RAM is a file in the VM container's tmpfs (`--ram-file`). */
  ramFile?: boolean;
  /** Under TCG, the translated-code cache it was launched with (absent: QEMU's default, m5dev before it was set). */
  tcgCacheMiB?: number;
  /** Host directories mounted in the guest (part of the launch: a suspended guest resumes with them). */
  shares?: Share[];
  /** Their 9p exports as launched (a writable share's .git read-only over it); absent: launched before m5dev recorded them. */
  exports?: NinepExport[];
  /** The m5ops device it was launched with (absent: launched by an m5dev without it). */
  m5ops?: { addr: number; exit: 'continue' | 'poweroff'; stats?: 'clock' | 'insns'; params?: { key: string; value: string }[]; checkpoints?: boolean };
  /** The engine the instance's data lives on (absent: created before m5dev recorded it; a local engine). */
  engine?: InstanceEngine;
  /** The toolchain image the VM container runs (its helper image for storage on a volume). */
  image?: string;
  /** launchKey() of the running VM container (a suspend records it). */
  launchKey?: string;
  /** portableKey() of that launch: a checkpoint records it, and restores only into the same machine. */
  portableKey?: string;
  /** An instance of `m5dev run`: its disk is a qcow2 overlay on a user's disk image (in the blob cache by sha256, as imageSha256), booted without seed or SSH. */
  job?: { image: string; format: 'raw' | 'qcow2' };
  createdAt: string;
}

/** The 9p exports the instance was launched with (an older record: one per share, none read-only). */
export function exportsOf(state: Pick<InstanceState, 'shares' | 'exports'>): NinepExport[] {
  return state.exports ?? shareExports((state.shares ?? []).map((s) => ({ ...s, readOnly: Boolean(s.readOnly) })), [], () => false);
}

export interface InstanceFiles {
  dir: string;
  state: string;
  userKey: string;
  hostKey: string;
  knownHosts: string;
  userData: string;
  metaData: string;
  seed: string;
  flash0: string;
  flash1: string;
  diskRaw: string;
  diskOverlay: string;
  console: string;
  qmp: string;
  /** A suspended guest's RAM (sparse), when it ran with its RAM in a file (see RAM_TMPFS). */
  ram: string;
  /** Saved device state of a suspended instance, and its record. */
  vmState: string;
  vmStateRecord: string;
  /** `run --kernel`: the initramfs that shows the image's init the built kernel's modules (workflows/initramfs.ts). */
  initramfs: string;
}

export function instanceFiles(dir: string): InstanceFiles {
  const f = (n: string) => join(dir, n);
  return {
    dir,
    state: f('state.json'),
    userKey: f('id_ed25519'),
    hostKey: f('ssh_host_ed25519_key'),
    knownHosts: f('known_hosts'),
    userData: f('user-data'),
    metaData: f('meta-data'),
    seed: f('seed.img'),
    flash0: f('flash0.img'),
    flash1: f('flash1.img'),
    diskRaw: f('disk.raw'),
    diskOverlay: f('disk.qcow2'),
    console: f('console.log'),
    qmp: f('qmp.sock'),
    ram: f('ram'),
    vmState: f('vmstate'),
    vmStateRecord: f('vmstate.json'),
    initramfs: f('initramfs.cpio'),
  };
}

/** The same files as names inside the instance's storage (see engine/storage.ts). */
export const STORED = instanceFiles('');
/** Same layout as seen from inside a container where the instance dir is mounted at /instance. */
export const IN_CONTAINER = instanceFiles('/instance');
export const CACHE_IN_CONTAINER = '/cache';
/**
 * The VM container's own tmpfs holding the guest's RAM as a file (`--ram-file`): as cheap as
 * anonymous memory while the guest runs (nothing is written back to a disk) and gone with the
 * container, yet a suspend copies it out as a file and a resume copies it back in, so QEMU saves
 * and loads only the device state.
 */
export const RAM_TMPFS = { dir: '/vmram', file: '/vmram/ram' } as const;

export function validateName(name: string): string {
  if (!INSTANCE_NAME_RE.test(name)) {
    throw new UsageError(`invalid instance name "${name}"`, 'Use lower-case letters, digits, ".", "_" or "-" (at most 41 characters).');
  }
  return name;
}

export function openInstance(home: HomeLayout, name: string, create = false): InstanceFiles {
  const dir = instanceDir(home, validateName(name));
  if (!existsSync(dir)) {
    if (!create) throw new InstanceNotFoundError(name);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  return instanceFiles(dir);
}

export function readState(files: InstanceFiles): InstanceState | undefined {
  if (!existsSync(files.state)) return undefined;
  let state: unknown;
  try {
    state = JSON.parse(readFileSync(files.state, 'utf8'));
  } catch (e) {
    state = e;
  }
  // m5dev writes it whole (a rename), so this is a hand edit or a damaged disk: say so, do not guess.
  if (!state || typeof state !== 'object' || state instanceof Error || typeof (state as InstanceState).name !== 'string') {
    const why = state instanceof Error ? state.message : 'not an instance record';
    const name = files.dir.split('/').pop() ?? '';
    throw new UsageError(
      `the state file of instance ${name} (${files.state}) is damaged: ${why}`,
      `It is m5dev's own record of the instance: restore it, or start over with \`m5dev destroy --name ${name}\` (which deletes the instance's disk).`,
    );
  }
  return state as InstanceState;
}

export function requireState(files: InstanceFiles, name: string): InstanceState {
  const state = readState(files);
  if (!state) throw new InstanceNotFoundError(name);
  return state;
}

function writeState(files: InstanceFiles, state: InstanceState): void {
  const tmp = `${files.state}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(tmp, files.state);
}

/**
 * The one writer of an instance's state file: each change is an intent, named, that returns the
 * state as written (whole, by a rename). What a launch records is decided by the launch; the
 * other intents change one thing of it.
 */
export const instanceRecord = {
  /** The guest's keys were made anew: it boots afresh under a new instance-id, so cloud-init installs them. */
  keysRemade(files: InstanceFiles, state: InstanceState): InstanceState {
    return put(files, { ...state, instanceId: undefined, seedHash: undefined });
  },
  /** A new instance made of another's checkpoint (`up --from-checkpoint`): that instance's state as it was then, under its own name. */
  fromCheckpoint(files: InstanceFiles, state: InstanceState): InstanceState {
    return put(files, state);
  },
  /** What a launch starts: the machine, its port, kernel, shares, m5ops device, image and launch key. */
  launched(files: InstanceFiles, state: InstanceState): InstanceState {
    return put(files, state);
  },
  /** The port QEMU got, when the one recorded was taken by the time it started. */
  portMoved(files: InstanceFiles, state: InstanceState, sshPort: number): InstanceState {
    return put(files, { ...state, sshPort });
  },
  /** Shares the guest could not mount: not asked for again (a later up, a suspend); the guest runs on without them. */
  sharesDropped(files: InstanceFiles, state: InstanceState): InstanceState {
    return put(files, { ...state, shares: undefined, exports: undefined });
  },
};

function put(files: InstanceFiles, state: InstanceState): InstanceState {
  writeState(files, state);
  return state;
}

export function hostKeyAlias(name: string): string {
  return `m5dev-${name}`;
}
