/** Every label m5dev puts on Docker resources, in one place. */
import { randomUUID } from 'node:crypto';
import { CLIENT } from '../client-id.js';

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

/** The m5dev process a tool container works for (client-id.ts). */
export { CLIENT, CLIENT_HOST } from '../client-id.js';

export type Role = 'toolchain' | 'vm' | 'tool' | 'network';

/** Labels for a resource; `home` ties per-instance resources to one M5DEV_HOME (tests clean up by it). */
export function baseLabels(role: Role, home?: string): Record<string, string> {
  const labels: Record<string, string> = { [LABELS.managed]: 'true', [LABELS.role]: role };
  if (role !== 'toolchain') labels[LABELS.session] = SESSION_ID;
  if (role === 'tool') labels[LABELS.client] = CLIENT;
  if (home) labels[LABELS.home] = home;
  return labels;
}
