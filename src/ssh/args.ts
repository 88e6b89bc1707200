/** ssh command lines for an instance, from the host or from inside its container. Pure. */
import { join } from 'node:path';
import { GUEST_USER } from '../vm/guest-access.js';

export interface SshTarget {
  alias: string;
  port: number;
  identityFile: string;
  knownHostsFile: string;
  controlPath: string;
  /** Reach sshd through this command's stdio (an Engine API relay) instead of 127.0.0.1:port. */
  proxyCommand?: string;
}

/**
 * A path as an ssh option or config value: `%` kept literal (ssh expands %-tokens in these), and
 * quoted when it has a blank, quote or backslash (ssh splits values at blanks). M5DEV_HOME, TMPDIR
 * and the home directory may hold any of them.
 */
export function sshPath(p: string): string {
  const s = p.replace(/%/g, '%%');
  return /[\s"'\\]/.test(s) ? `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"` : s;
}

/** A ProxyCommand: the rest of the line goes to the shell as it is; only its `%` are kept literal. */
const sshCommandValue = (c: string): string => c.replace(/%/g, '%%');

/** Options shared by every connection: pinned host key, our key only, no user config. */
export function sshOptions(t: SshTarget, opts: { batch: boolean; connectTimeoutSec?: number; reuse?: boolean }): string[] {
  const o = (kv: string) => ['-o', kv];
  return [
    '-F', '/dev/null',
    ...o(`HostKeyAlias=${t.alias}`),
    ...o('StrictHostKeyChecking=yes'),
    ...o(`UserKnownHostsFile=${sshPath(t.knownHostsFile)}`),
    ...o('GlobalKnownHostsFile=/dev/null'),
    ...o('HostKeyAlgorithms=ssh-ed25519'),
    // Plain X25519 first: under TCG the guest spends ~130 ms more per connection on the default
    // post-quantum hybrid (sntrup761x25519), which stays allowed after it.
    ...o('KexAlgorithms=^curve25519-sha256'),
    ...o(`IdentityFile=${sshPath(t.identityFile)}`),
    ...o('IdentitiesOnly=yes'),
    ...o('PasswordAuthentication=no'),
    ...o('KbdInteractiveAuthentication=no'),
    ...o(`BatchMode=${opts.batch ? 'yes' : 'no'}`),
    ...o(`ConnectTimeout=${opts.connectTimeoutSec ?? 10}`),
    ...o('ServerAliveInterval=15'),
    ...o('LogLevel=ERROR'),
    ...(opts.reuse === false
      ? o('ControlMaster=no')
      : [...o('ControlMaster=auto'), ...o(`ControlPath=${sshPath(t.controlPath)}`), ...o('ControlPersist=300')]),
    ...(t.proxyCommand ? o(`ProxyCommand=${sshCommandValue(t.proxyCommand)}`) : []),
    '-p', String(t.port),
  ];
}

export function sshCommand(t: SshTarget, remote: string[], opts: { batch: boolean; tty?: boolean; connectTimeoutSec?: number; reuse?: boolean }): string[] {
  return ['ssh', ...sshOptions(t, opts), ...(opts.tty ? ['-t'] : []), `${GUEST_USER}@127.0.0.1`, ...(remote.length ? ['--', ...remote] : [])];
}

/**
 * Unix socket paths are limited to ~104 bytes: keep the control socket short and per-instance, in
 * `dir` (see control-dir.ts). The name is a 64-bit FNV-1a of the instance directory: not a secret,
 * only distinct, and without node:crypto, whose loading alone is a tenth of `m5dev exec`'s own time.
 */
export function hostControlPath(instanceDir: string, dir: string): string {
  return join(dir, `${fnv1a64(instanceDir)}.ssh`);
}

/** Pure: FNV-1a, 64 bits, over the UTF-8 bytes of `s`, as 16 hex digits. */
export function fnv1a64(s: string): string {
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(s, 'utf8')) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 0x100000001b3n);
  return h.toString(16).padStart(16, '0');
}

/** A Host block for ~/.ssh/config or VS Code Remote-SSH. */
export function sshConfigBlock(t: SshTarget, hostName: string): string {
  return [
    `Host ${hostName}`,
    '  HostName 127.0.0.1',
    `  Port ${t.port}`,
    `  User ${GUEST_USER}`,
    `  IdentityFile ${sshPath(t.identityFile)}`,
    '  IdentitiesOnly yes',
    `  HostKeyAlias ${t.alias}`,
    `  UserKnownHostsFile ${sshPath(t.knownHostsFile)}`,
    '  StrictHostKeyChecking yes',
    '  PasswordAuthentication no',
    ...(t.proxyCommand ? [`  ProxyCommand ${sshCommandValue(t.proxyCommand)}`] : []),
    '',
  ].join('\n');
}
