/**
 * Who an m5dev process is, across processes and machines: "HOSTNAME/BOOT:PID". Tool containers carry
 * it in a label and locks in their holder file, so that a later m5dev can tell a holder that died
 * (kill -9, power loss) from one that lives (even stopped by Ctrl-Z, or on a laptop that slept).
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * This machine as the client id says it: its hostname, this boot's id and the PID namespace, so that
 * a machine with the same hostname (CI runners are often all "runner"), or a container sharing this
 * machine's hostname and boot, is never taken for this one.
 */
export const CLIENT_HOST = `${hostname()}/${bootId()}${pidNamespace()}`;
/** This process. */
export const CLIENT = `${CLIENT_HOST}:${process.pid}`;

/** The PID namespace, when it is not the machine's first: pids of two containers on one host differ in meaning. */
function pidNamespace(): string {
  try {
    const ns = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1];
    return ns ? `/pid${ns}` : '';
  } catch {
    return '';
  }
}

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
