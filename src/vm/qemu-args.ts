/** The QEMU command line, from a pure function (paths are as seen inside the VM container). */
import type { MachineChoice } from './machine.js';
import { shareQemuArgs, type NinepExport } from './shares.js';

export interface QemuSpec {
  machine: MachineChoice;
  cpus: number;
  memoryMiB: number;
  flash0: string;
  flash1: string;
  disk: { path: string; format: 'raw' | 'qcow2' };
  /** The cloud-init seed (a job's disk image, `m5dev run`, boots without one). */
  seed?: { path: string; format: 'raw' | 'qcow2' };
  /** Port inside the container that slirp forwards to guest 22. */
  guestSshForward: number;
  consoleLog: string;
  qmpSocket: string;
  /**
   * Guest RAM as a shared file mapping (`--ram-file`): `m5dev suspend` then saves only the device
   * state (x-ignore-shared) and a resume maps the file restored from it instead of loading all of RAM.
   * Absent: anonymous RAM, saved whole into the migration stream.
   */
  ramFile?: string;
  /** Host directories exported over 9p (vm/shares.ts), in order. */
  shares?: NinepExport[];
  /** TCG's translated-code cache, MiB (QEMU's own default is 1 GiB, nearly all of it resident once a guest has booted). */
  tcgCacheMiB?: number;
  /**
   * gem5's m5ops at `addr` (docker/m5ops/m5ops.c, loaded as a plugin): its files live in `dir` (the
   * instance as the container sees it); `exit` says whether a guest's m5 exit/fail powers the VM off.
   */
  m5ops?: {
    plugin: string;
    addr: number;
    dir: string;
    exit: 'continue' | 'poweroff';
    stats?: 'clock' | 'insns';
    /** With poweroff: the exit that powers off (a fail or panic at once); a job's end (`m5dev run --exits`). */
    exits?: number;
    /** A checkpoint op pauses the VM for m5dev to save it (`m5dev run`, which watches the guest). */
    checkpoints?: boolean;
    /** init_param's answers by key. */
    params?: { key: string; value: string }[];
  };
  /** Direct kernel boot (skips firmware and bootloader). */
  kernel?: { image: string; append: string; initrd?: string };
  /**
   * The invoking user, when QEMU would otherwise run as root on its files (a rootful engine that
   * shares this machine's files, m5dev run by a non-root user): QEMU opens its devices, disks and
   * sockets as root, then drops to this user before the guest runs, so what the guest does through
   * a share, or QEMU on its behalf, is never more than the user could do.
   */
  runAs?: { uid: number; gid: number };
}

const RAM_ID = 'ram0';

export function qemuArgs(s: QemuSpec): string[] {
  const args = [
    'qemu-system-aarch64',
    '-M', s.ramFile ? `${s.machine.machine},memory-backend=${RAM_ID}` : s.machine.machine,
    '-cpu', s.machine.cpu,
    '-accel', s.machine.accel === 'tcg' ? `tcg,thread=multi${s.tcgCacheMiB ? `,tb-size=${s.tcgCacheMiB}` : ''}` : 'kvm',
    '-smp', String(s.cpus),
    '-m', String(s.memoryMiB),
    ...(s.ramFile ? ['-object', `memory-backend-file,id=${RAM_ID},size=${s.memoryMiB}M,mem-path=${s.ramFile},share=on`] : []),
    '-nographic',
    '-monitor', 'none',
    '-chardev', `file,id=console,path=${s.consoleLog}`,
    '-serial', 'chardev:console',
    '-qmp', `unix:${s.qmpSocket},server=on,wait=off`,
    ...(s.kernel ? [] : ['-drive', `if=pflash,format=raw,file=${s.flash0},readonly=on`, '-drive', `if=pflash,format=raw,file=${s.flash1}`]),
    ...blockDevices(s),
    '-netdev', `user,id=net0,hostfwd=tcp::${s.guestSshForward}-:22`,
    '-device', 'virtio-net-device,netdev=net0',
    '-device', 'virtio-rng-device',
    // Free page reporting: the guest hands pages it freed back (holes punched in the RAM file), so
    // an idle guest holds what it uses, not all it ever touched, and suspend copies less.
    '-device', 'virtio-balloon-device,free-page-reporting=on',
    ...shareQemuArgs(s.shares ?? []),
    ...(s.m5ops ? ['-plugin', pluginArg(s.m5ops)] : []),
    ...(s.runAs ? ['-runas', `${s.runAs.uid}:${s.runAs.gid}`] : []),
    '-sandbox', sandbox(s),
  ];
  if (s.kernel) {
    // Direct boot: no firmware; QEMU hands the kernel its device tree.
    args.push('-kernel', s.kernel.image, '-append', s.kernel.append);
    if (s.kernel.initrd) args.push('-initrd', s.kernel.initrd);
  }
  return args;
}

/** The m5ops plugin's options (docker/m5ops/m5ops.c names each). Pure. */
function pluginArg(m: NonNullable<QemuSpec['m5ops']>): string {
  return [
    `file=${m.plugin}`,
    `base=0x${m.addr.toString(16)}`,
    `dir=${m.dir}`,
    `exit=${m.exit}`,
    ...(m.exits && m.exits > 1 ? [`exits=${m.exits}`] : []),
    ...(m.stats === 'insns' ? ['stats=insns'] : []),
    ...(m.checkpoints ? ['checkpoint=pause'] : []),
    ...(m.params ?? []).map((p) => `param=${p.key}=${p.value}`),
  ].join(',');
}

/**
 * QEMU's seccomp sandbox: no obsolete system calls, no scheduler or CPU-affinity changes, no new
 * process (the suspend and resume streams are files the monitor's relay hands QEMU with getfd, not
 * `exec:` commands), and no set*uid once the guest runs, except that -runas itself is a setuid (QEMU
 * dies of it under elevateprivileges=deny, measured): allowed when QEMU drops to the invoking user.
 */
export function sandbox(s: Pick<QemuSpec, 'runAs'>): string {
  return `on,obsolete=deny,resourcecontrol=deny,elevateprivileges=${s.runAs ? 'allow' : 'deny'},spawn=deny`;
}

/**
 * The instance disk and the cidata seed. The firmware finds the disk's ESP in any order; a kernel
 * booted directly names its root device, and on virt the *last* virtio-mmio device on the
 * command line gets the lowest address and is probed first: so there the disk comes last (vda).
 */
function blockDevices(s: QemuSpec): string[] {
  const disk = ['-drive', `if=none,file=${s.disk.path},format=${s.disk.format},id=hd0,cache=writeback,discard=unmap`, '-device', 'virtio-blk-device,drive=hd0'];
  const seed = s.seed ? ['-drive', `if=none,file=${s.seed.path},format=${s.seed.format},id=cidata,readonly=on`, '-device', 'virtio-blk-device,drive=cidata'] : [];
  return s.kernel ? [...seed, ...disk] : [...disk, ...seed];
}
