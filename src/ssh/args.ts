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

/** Options shared by every connection: pinned host key, our key only, no user config. */
export function sshOptions(t: SshTarget, opts: { batch: boolean; connectTimeoutSec?: number; reuse?: boolean }): string[] {
  const o = (kv: string) => ['-o', kv];
  return [
    '-F', '/dev/null',
    ...o(`HostKeyAlias=${t.alias}`),
    ...o('StrictHostKeyChecking=yes'),
    ...o(`UserKnownHostsFile=${t.knownHostsFile}`),
    ...o('GlobalKnownHostsFile=/dev/null'),
    ...o('HostKeyAlgorithms=ssh-ed25519'),
    // Plain X25519 first: under TCG the guest spends ~130 ms more per connection on the default
    // post-quantum hybrid (sntrup761x25519), which stays allowed after it.
    ...o('KexAlgorithms=^curve25519-sha256'),
    ...o(`IdentityFile=${t.identityFile}`),
    ...o('IdentitiesOnly=yes'),
    ...o('PasswordAuthentication=no'),
    ...o('KbdInteractiveAuthentication=no'),
    ...o(`BatchMode=${opts.batch ? 'yes' : 'no'}`),
    ...o(`ConnectTimeout=${opts.connectTimeoutSec ?? 10}`),
    ...o('ServerAliveInterval=15'),
    ...o('LogLevel=ERROR'),
    ...(opts.reuse === false
      ? o('ControlMaster=no')
      : [...o('ControlMaster=auto'), ...o(`ControlPath=${t.controlPath}`), ...o('ControlPersist=300')]),
    ...(t.proxyCommand ? o(`ProxyCommand=${t.proxyCommand}`) : []),
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
    `  IdentityFile ${t.identityFile}`,
    '  IdentitiesOnly yes',
    `  HostKeyAlias ${t.alias}`,
    `  UserKnownHostsFile ${t.knownHostsFile}`,
    '  StrictHostKeyChecking yes',
    '  PasswordAuthentication no',
    ...(t.proxyCommand ? [`  ProxyCommand ${t.proxyCommand}`] : []),
    '',
  ].join('\n');
}
