/**
 * The SSH host key check of a `DOCKER_HOST=ssh://` engine, as the docker CLI gets it from OpenSSH:
 * the keys OpenSSH has on record for the host (`ssh-keygen -F`, which reads hashed names and
 * `[host]:port` entries of ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts), and the key the engine
 * host shows compared with them. Whoever answers an unchecked connection receives every file m5dev
 * sends the engine, the guest's private host key among them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface KnownKeys {
  /** Key type and base64 blob of each key on record (not revoked). */
  keys: { type: string; blob: string }[];
  /** Blobs marked @revoked. */
  revoked: string[];
}

export type HostKeyVerdict = 'known' | 'unknown' | 'changed' | 'revoked';

/** The name known_hosts gives a host: `host`, or `[host]:port` off port 22. */
export const knownHostsName = (host: string, port: number): string => (port === 22 ? host : `[${host}]:${port}`);

/** Pure: the entries `ssh-keygen -F` printed (comment lines skipped, @cert-authority ignored). */
export function parseKnownHosts(out: string): KnownKeys {
  const found: KnownKeys = { keys: [], revoked: [] };
  for (const line of out.split('\n')) {
    const fields = line.trim().split(/\s+/);
    const first = fields[0] ?? '';
    if (first === '' || first.startsWith('#')) continue;
    const marker = first.startsWith('@') ? fields.shift() : undefined;
    const [, type, blob] = fields;
    if (!type || !blob) continue;
    if (marker === '@revoked') found.revoked.push(blob);
    else if (marker === undefined) found.keys.push({ type, blob });
  }
  return found;
}

/** Pure: what a host key shown by the engine host is, against the keys on record. */
export function verdict(known: KnownKeys, shown: Buffer): HostKeyVerdict {
  const blob = shown.toString('base64');
  if (known.revoked.includes(blob)) return 'revoked';
  if (known.keys.some((k) => k.blob === blob)) return 'known';
  return known.keys.length ? 'changed' : 'unknown';
}

/**
 * Pure: the host key algorithms to offer, those of the keys on record first (the host then shows
 * one of those, as OpenSSH arranges it), or undefined to keep ssh2's defaults.
 */
export function hostKeyAlgorithms(known: KnownKeys): string[] | undefined {
  const algos = known.keys
    .flatMap((k) => (k.type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [k.type]))
    .filter((a) => SSH2_HOST_KEY_ALGORITHMS.includes(a));
  return algos.length ? [...new Set(algos)] : undefined;
}

/** The host key algorithms the ssh2 client (docker-modem's) speaks. */
const SSH2_HOST_KEY_ALGORITHMS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];

/** The keys OpenSSH has on record for host:port; undefined when ssh-keygen is not installed. */
export function lookupKnownHosts(host: string, port: number, home: string): KnownKeys | undefined {
  const files = [join(home, '.ssh', 'known_hosts'), '/etc/ssh/ssh_known_hosts'].filter((f) => existsSync(f));
  let out = '';
  for (const f of files) {
    const r = spawnSync('ssh-keygen', ['-F', knownHostsName(host, port), '-f', f], { encoding: 'utf8' });
    if (r.error) return undefined;
    out += r.stdout;
  }
  if (!files.length && spawnSync('ssh-keygen', ['-?'], { encoding: 'utf8' }).error) return undefined;
  return parseKnownHosts(out);
}
