/**
 * Host directories shared into the guest (`up --share HOST[:GUEST]`, m5dev.json "shares"): each is
 * bind-mounted into the VM container, exported by QEMU's 9p server (virtio-9p over MMIO) and
 * mounted by `up` in the guest. 9p rather than virtiofs: QEMU 7.2's vhost-user-fs device cannot be
 * migrated at all, so a guest with one could never be suspended, while a 9p export blocks
 * migration only while it is mounted (suspend unmounts, up mounts again); and 9p needs no second
 * daemon in the container. Pure, apart from nothing: the guest scripts run over SSH in up/suspend.
 */
import { isAbsolute, posix, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import type { Mount } from '../docker/mounts.js';
import { GUEST_USER } from './guest-access.js';
import { printable } from '../terminal-text.js';

export interface Share {
  /** Absolute path on the client (the engine must see it: a local engine sharing our files). */
  host: string;
  /** Absolute path in the guest. */
  guest: string;
  /**
   * The guest cannot change it (QEMU exports it readonly): `HOST:GUEST:ro`, `"readOnly": true`, and
   * every share a repository's m5dev.json names. A writable share is code the host may run later.
   */
  readOnly: boolean;
}

/**
 * One 9p export: a share, or the `.git` of a writable share, exported read-only over it, so the
 * guest cannot set `core.fsmonitor`, hooks or aliases that the host's git would run.
 */
export interface NinepExport {
  tag: string;
  /** Where the VM container sees it. */
  path: string;
  guest: string;
  readOnly: boolean;
  model: ShareModel;
}

/** Where the VM container sees share i, and the 9p mount tag the guest mounts it by. */
export const SHARES_IN_CONTAINER = '/shares';
export const shareTag = (i: number): string => `m5dev${i}`;
export const containerPath = (i: number): string => `${SHARES_IN_CONTAINER}/${i}`;
/**
 * The VM container's mounts of the shares (the probe mounts the same paths read-only); a writable
 * share whose `hasGitDir(i)` gets its `.git` bound again, read-only, over it: QEMU itself cannot
 * write there, whatever the guest mounts.
 */
export const shareMounts = (shares: Share[], hasGitDir: (i: number) => boolean = () => false, readOnly = false): Mount[] =>
  shares.flatMap((s, i): Mount[] => {
    const own: Mount = { kind: 'bind', source: s.host, target: containerPath(i), readOnly: readOnly || s.readOnly };
    if (readOnly || s.readOnly || !hasGitDir(i)) return [own];
    return [own, { kind: 'bind', source: posix.join(s.host, GIT_DIR), target: `${containerPath(i)}/${GIT_DIR}`, readOnly: true }];
  });

/** The name of the directory a writable share's git metadata lives in. */
export const GIT_DIR = '.git';

/**
 * Pure: the 9p exports of `shares` (in order; `models[i]` is share i's), each writable share's
 * `.git` directory (when `hasGitDir(i)`) exported read-only right after it.
 */
export function shareExports(shares: Share[], models: ShareModel[], hasGitDir: (i: number) => boolean): NinepExport[] {
  return shares.flatMap((s, i) => {
    const own: NinepExport = { tag: shareTag(i), path: containerPath(i), guest: s.guest, readOnly: s.readOnly, model: models[i] ?? 'mapped-xattr' };
    if (s.readOnly || !hasGitDir(i)) return [own];
    return [own, { tag: `${shareTag(i)}git`, path: `${containerPath(i)}/${GIT_DIR}`, guest: `${s.guest}/${GIT_DIR}`, readOnly: true, model: own.model }];
  });
}

const GUEST_HOME = `/home/${GUEST_USER}`;
/** Guest places a share must not cover: the system, and where m5dev installs a kernel's modules. */
const RESERVED = ['/', '/bin', '/boot', '/dev', '/etc', '/lib', '/lib/modules', '/proc', '/root', '/run', '/sbin', '/sys', '/tmp', '/usr', '/var', GUEST_HOME];
/** Guest places a share may not lie in either: hiding them would hide the guest's system, its SSH keys or host keys. */
const RESERVED_TREES = ['/bin', '/boot', '/dev', '/etc', '/lib', '/proc', '/root', '/run', '/sbin', '/sys', '/usr', '/var/lib', '/var/log', `${GUEST_HOME}/.ssh`];

/** Host places no share may be or lie in: the system's, and (below) the user's secrets. */
const HOST_SYSTEM = ['/bin', '/boot', '/dev', '/etc', '/lib', '/lib32', '/lib64', '/libx32', '/proc', '/run', '/sbin', '/sys', '/usr', '/var'];
const HOST_EXACT = ['/', '/home', '/Users', '/root'];
const HOST_SECRETS = ['.ssh', '.gnupg', '.docker', '.aws', '.kube', '.config/m5dev', '.cache/m5dev'];

/**
 * Why a host directory may not be shared with the guest (a guest is untrusted: it may read and write
 * all of it), or undefined. `real` is the path with its links resolved; `home` the user's home.
 */
export function hostShareRefusal(real: string, home: string, private_: string[] = []): string | undefined {
  const within = (p: string, dir: string) => p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
  if (HOST_EXACT.includes(real)) return `${real} holds every user's files`;
  const system = HOST_SYSTEM.find((d) => within(real, d));
  if (system) return `${system} is a system directory of the host`;
  for (const dir of [...HOST_SECRETS.map((d) => posix.join(home, d)), ...private_]) {
    if (within(real, dir) || within(dir, real)) return `the guest would reach ${dir}`;
  }
  return undefined;
}

/**
 * `HOST[:GUEST]`: HOST relative to `baseDir` (the working directory, or m5dev.json's directory);
 * GUEST absolute, or relative to the guest user's home; default the guest user's home/<HOST's name>.
 */
export function parseShare(spec: string, baseDir: string, source: string, readOnlyDefault = false): Share {
  // A trailing `:ro` or `:rw` (HOST:GUEST:ro, or HOST::ro for the default guest path).
  const mode = /:(ro|rw)$/.exec(spec)?.[1];
  const readOnly = mode === undefined ? readOnlyDefault : mode === 'ro';
  if (mode !== undefined) spec = spec.slice(0, -3).replace(/:$/, '');
  const colon = spec.indexOf(':');
  const hostPart = colon < 0 ? spec : spec.slice(0, colon);
  const guestPart = colon < 0 ? '' : spec.slice(colon + 1);
  if (hostPart === '') throw new UsageError(`${source}: share ${JSON.stringify(spec)} names no host directory`, 'Give HOST_DIR[:GUEST_PATH], e.g. --share .:/home/ubuntu/m5');
  const host = resolve(baseDir, hostPart);
  const name = posix.basename(host.replace(/\\/g, '/'));
  const raw = guestPart === '' ? `${GUEST_HOME}/${name}` : guestPart;
  const guest = posix.normalize(posix.isAbsolute(raw) ? raw : `${GUEST_HOME}/${raw}`).replace(/(.)\/+$/, '$1');
  if (!isAbsolute(host)) throw new UsageError(`${source}: share host path ${hostPart} is not a path`);
  if (RESERVED.includes(guest) || RESERVED_TREES.some((d) => guest === d || guest.startsWith(`${d}/`))) throw new UsageError(`${source}: a share cannot cover ${guest} in the guest`, `Mount it in the guest user's home or /opt, e.g. ${GUEST_HOME}/${name}.`);
  if (/[\s,]/.test(guest)) throw new UsageError(`${source}: the guest path ${JSON.stringify(guest)} has a space or comma`, 'Pick a guest path without them (the host path may have them).');
  return { host, guest, readOnly };
}

/** Two shares on one guest path, or one inside another, cannot both be mounted as asked. */
export function checkShares(shares: Share[], source: string): Share[] {
  for (const [i, a] of shares.entries()) {
    for (const b of shares.slice(i + 1)) {
      if (a.guest === b.guest || b.guest.startsWith(`${a.guest}/`) || a.guest.startsWith(`${b.guest}/`)) {
        throw new UsageError(`${source}: shares ${a.host} and ${b.host} overlap in the guest (${a.guest}, ${b.guest})`);
      }
    }
  }
  return shares;
}

export const sameShares = (a: Share[] = [], b: Share[] = []): boolean =>
  a.length === b.length && a.every((s, i) => s.host === b[i]?.host && s.guest === b[i]?.guest && Boolean(s.readOnly) === Boolean(b[i]?.readOnly));

/**
 * How QEMU keeps what the guest sets on a share's files, never applying it to the host file:
 * - `mapped-xattr` (default): in `user.virtfs.*` extended attributes of the file;
 * - `mapped-file`: in `.virtfs_metadata` directories beside the files (hidden from the guest),
 *   for a host file system without user extended attributes (found by XATTR_PROBE before launch).
 */
export type ShareModel = 'mapped-xattr' | 'mapped-file';

/**
 * QEMU's side: one 9p export and device per export (paths as the VM container sees them).
 *
 * With either model of ShareModel, what the guest sets (owner, group, mode bits, device nodes,
 * links) is kept aside and never applied to the host file. On the host a file the guest creates is
 * a plain file (or directory) of QEMU's user, mode 0644 (0755): guest root cannot plant a setuid
 * file, a device node or a link leading out of the share, however it chowns and chmods. The guest
 * sees what it set; host files without that record show their host owner and mode. A read-only
 * export refuses every change (EROFS), whatever the guest mounts it as.
 */
export function shareQemuArgs(exports: NinepExport[]): string[] {
  return exports.flatMap((e) => [
    '-fsdev',
    `local,id=fs${e.tag},path=${e.path},security_model=${e.model},fmode=0644,dmode=0755${e.readOnly ? ',readonly=on' : ''}`,
    '-device',
    `virtio-9p-device,fsdev=fs${e.tag},mount_tag=${e.tag}`,
  ]);
}

/**
 * Container command (the toolchain image has python3), the share directories as arguments: prints
 * `INDEX xattr` for each whose file system keeps user extended attributes (reading one that is not
 * there says ENODATA), else `INDEX file` (ENOTSUP). Reads only: nothing is written into the user's tree.
 */
export const XATTR_PROBE = [
  'python3',
  '-c',
  [
    'import errno, os, sys',
    'for i, p in enumerate(sys.argv[1:]):',
    '    try:',
    "        os.getxattr(p, 'user.m5dev.probe')",
    "        print(i, 'xattr')",
    '    except OSError as e:',
    "        print(i, 'file' if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP) else 'xattr')",
  ].join('\n'),
];

/**
 * Pure: XATTR_PROBE's output (merged with anything else the container printed) as the model of each
 * of `count` shares, matched by index; anything unclear keeps mapped-xattr (the mount script then
 * refuses a share that cannot keep the attributes: it fails closed).
 */
export function shareModels(probeOutput: string, count: number): ShareModel[] {
  const file = new Set<number>();
  for (const line of probeOutput.split('\n')) {
    const m = /^(\d+) file$/.exec(line.trim());
    if (m) file.add(Number(m[1]));
  }
  return Array.from({ length: count }, (_, i) => (file.has(i) ? 'mapped-file' : 'mapped-xattr'));
}

/** The note `up` gives for a share kept with mapped-file. */
export const mappedFileNote = (s: Share): string =>
  `share ${s.guest}: the file system of ${s.host} keeps no extended attributes, so QEMU keeps the guest's owners and modes in .virtfs_metadata directories there (hidden from the guest)`;

/** 9p mount options: coherent with edits on the host (no cache), the largest virtio message size. */
export const MOUNT_OPTIONS = 'trans=virtio,version=9p2000.L,msize=512000,cache=none';

/** Exit codes of sh/guest/mount-shares.sh and unmount-shares.sh. */
export const SHARE_EXIT = { noNinep: 3, inUse: 4, noXattrs: 5 } as const;

/** sh/guest/mount-shares.sh's arguments: the guest user, the mount options, then each export's tag, dir and ro|rw. */
export function mountScriptArgs(exports: NinepExport[]): string[] {
  return [GUEST_USER, MOUNT_OPTIONS, ...exports.flatMap((e) => [e.tag, e.guest, e.readOnly ? 'ro' : 'rw'])];
}

/** sh/guest/unmount-shares.sh's arguments: the guest dirs, nested ones (a share's .git) first. */
export function unmountScriptArgs(exports: NinepExport[]): string[] {
  return exports.map((e) => e.guest).reverse();
}

/** Pure: mount-shares.sh's lines (shares whose owner is not the guest user) as notes for the user. */
export function ownerNotes(stdout: string): string[] {
  return stdout
    .split('\n')
    .map((l) => /^(\d+) (.+)$/.exec(l.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map(([, uid, dir]) => `share ${printable(dir ?? '')} belongs to uid ${uid} on the host, not to ${GUEST_USER}: the guest user writes there only where its permissions allow (9p shows the host's owners; chown it on the host to uid 1000, or use sudo)`);
}
