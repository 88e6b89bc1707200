/** Every label m5dev puts on Docker resources, in one place. */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';

export const SESSION_ID = randomUUID();
export const LABELS = {
  managed: 'dev.m5dev.managed',
  contextHash: 'dev.m5dev.context-hash',
  /** toolchainStageHash(): the identity kernel and module builds are keyed by. */
  toolsHash: 'dev.m5dev.tools-hash',
  instance: 'dev.m5dev.instance',
  home: 'dev.m5dev.home',
  sshPort: 'dev.m5dev.ssh-port',
  role: 'dev.m5dev.role',
  /** Unique per m5dev process: lets a failed or interrupted command sweep what it created. */
  session: 'dev.m5dev.session',
  /** The m5dev process (host and pid) a tool container works for: one whose process died is an orphan. */
  client: 'dev.m5dev.client',
} as const;

/**
 * This machine as the client label says it: its hostname and this boot's id, so that a machine
 * with the same hostname (CI runners are often all "runner") is never taken for this one.
 */
export const CLIENT_HOST = `${hostname()}/${bootId()}`;
/** This process as the client label says it. */
export const CLIENT = `${CLIENT_HOST}:${process.pid}`;

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().slice(0, 8);
  } catch {
    return 'noboot'; // not Linux: the hostname alone
  }
}

export type Role = 'toolchain' | 'vm' | 'tool' | 'network';

/** Labels for a resource; `home` ties per-instance resources to one M5DEV_HOME (tests clean up by it). */
export function baseLabels(role: Role, home?: string): Record<string, string> {
  const labels: Record<string, string> = { [LABELS.managed]: 'true', [LABELS.role]: role };
  if (role !== 'toolchain') labels[LABELS.session] = SESSION_ID;
  if (role === 'tool') labels[LABELS.client] = CLIENT;
  if (home) labels[LABELS.home] = home;
  return labels;
}
