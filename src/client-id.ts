/**
 * Who an m5dev process is, across processes and machines: "HOSTNAME/BOOT:PID". Tool containers carry
 * it in a label and locks in their holder file, so that a later m5dev can tell a holder that died
 * (kill -9, power loss) from one that lives (even stopped by Ctrl-Z, or on a laptop that slept).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * This machine as the client id says it: its hostname and this boot's id, so that a machine with
 * the same hostname (CI runners are often all "runner") is never taken for this one.
 */
export const CLIENT_HOST = `${hostname()}/${bootId()}`;
/** This process. */
export const CLIENT = `${CLIENT_HOST}:${process.pid}`;

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().slice(0, 8);
  } catch {
    return 'noboot'; // not Linux: the hostname alone
  }
}

/**
 * Whether the process a client id names lives: true or false for a process of this machine and
 * boot; undefined for another machine's (or another boot's, which cannot be told from one).
 */
export function clientAlive(client: string): boolean | undefined {
  const host = `${CLIENT_HOST}:`;
  if (!client.startsWith(host)) return undefined;
  const pid = Number(client.slice(host.length));
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
