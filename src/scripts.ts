/**
 * The shell scripts m5dev runs in the guest (over SSH) and in tool containers, shipped as files in
 * sh/ (checked by shellcheck in `npm run lint`); each file's header names its arguments and exit codes.
 * They are sent as the text of `sh -c` (shell.ts), so nothing needs to be installed where they run;
 * the one Python script (the VM container's socket relay) as the text of `python3 -c`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from './assets.js';

import type { QmpFd } from './vm/qmp.js';

export const SCRIPTS = {
  /** Guest, root: GUEST_USER MOUNT_OPTIONS then TAG DIR pairs. */
  mountShares: 'guest/mount-shares.sh',
  /** Guest, root: the share dirs to unmount. */
  unmountShares: 'guest/unmount-shares.sh',
  /** Guest, root: RELEASE; the tree as a gzipped tar on stdin. */
  installKernelTree: 'guest/install-kernel-tree.sh',
  /** Guest: DEST NAME ENTRY; a tar on stdin. */
  cpUnpack: 'guest/cp-unpack.sh',
  /** Guest: SRC; a tar on stdout. */
  cpPack: 'guest/cp-pack.sh',
  /** Guest, root: RELEASE [PARAM...]; a header line and a tar of modules on stdin (MODULE_LOAD in workflows/module.ts). */
  moduleLoad: 'guest/module-load.sh',
  /** Guest, root: gem5's m5, libm5.a and headers as a tar on stdin (usr/local/...). */
  installGem5M5: 'guest/install-gem5-m5.sh',
  /** Guest: DEST MODE; the file on stdin, renamed into place when whole. */
  putFile: 'guest/put-file.sh',
  /** Guest, root: the module names. */
  moduleUnload: 'guest/module-unload.sh',
  /** Tool container: INSTANCE_DIR NAME. */
  makeKeys: 'tool/make-keys.sh',
  /** Tool container: SEED USER_DATA META_DATA. */
  makeSeed: 'tool/make-seed.sh',
  /** Tool container: KIND BASE DISK GROW. */
  makeDisk: 'tool/make-disk.sh',
  /** gem5 m5 builder container: TREE JOBS CROSS_COMPILE; scons of util/m5 for arm64. */
  gem5M5Build: 'tool/gem5-m5-build.sh',
  /** Tool container: INIT_C TREE RELEASE OUT CROSS_COMPILE MODULE...; run --kernel's initramfs. */
  makeInitramfs: 'tool/make-initramfs.sh',
  /** Tool container: TARBALL FINAL. */
  extractSource: 'tool/extract-source.sh',
  /** Tool container: SRC BUILD OUT STAMP ARCH CROSS_COMPILE. */
  makeGuestTree: 'tool/make-guest-tree.sh',
  /** Tool or VM container: DIR TEST_SOURCE TEST_BINARY MAKE...; kbuild and the module's test program. */
  moduleBuild: 'tool/module-build.sh',
  /** Tool container: BUILD_DIR MAKE...; the directory made, then the make. */
  kernelMake: 'tool/kernel-make.sh',
  /** Base image, with the network: SNAPSHOT SOURCES_FILE PACKAGES_SCRIPT; apt's simulated install (image lock). */
  resolvePackages: 'tool/resolve-packages.sh',
  /** Volume helper container (and the VM container, for `tail`): ROOT OP ARGS (VolumeStorage's operations). */
  volume: 'tool/volume.sh',
  /** VM container: FILE CMD...; the command with FILE on its stdin, then FILE removed. */
  stdinFrom: 'vm/stdin-from.sh',
  /** VM container, python3: `unix PATH WAIT_SECONDS [NAME=r|w:FILE]...` or `tcp HOST PORT`; a byte relay on stdin/stdout (files handed over with getfd). */
  relay: 'vm/relay.py',
} as const;

const loaded = new Map<string, string>();

/** The script's text (read once). */
export function script(name: keyof typeof SCRIPTS): string {
  const file = SCRIPTS[name];
  let text = loaded.get(file);
  if (text === undefined) {
    text = readFileSync(join(PACKAGE_ROOT, 'sh', file), 'utf8');
    loaded.set(file, text);
  }
  return text;
}

/** The VM container's relay to a socket inside it (sh/vm/relay.py), as an exec command. */
export function relayCommand(to: { unix: string; waitSec: number; fds?: QmpFd[] } | { tcp: string; port: number }): string[] {
  const fds = 'unix' in to ? (to.fds ?? []).map((f) => `${f.name}=${f.mode === 'write' ? 'w' : 'r'}:${f.path}`) : [];
  const args = 'unix' in to ? ['unix', to.unix, String(to.waitSec), ...fds] : ['tcp', to.tcp, String(to.port)];
  return ['python3', '-c', script('relay'), ...args];
}

/** A shipped sh script as a container command: `sh -e -c TEXT NAME ARGS...` (no quoting: an argv). */
export function scriptCommand(name: keyof typeof SCRIPTS, args: string[]): string[] {
  return ['sh', '-ec', script(name), `m5dev-${name}`, ...args];
}
