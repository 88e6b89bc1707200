/** Every label m5dev puts on Docker resources, in one place. */
import { randomUUID } from 'node:crypto';

export const SESSION_ID = randomUUID();
export const LABELS = {
  managed: 'dev.m5dev.managed',
  contextHash: 'dev.m5dev.context-hash',
  instance: 'dev.m5dev.instance',
  home: 'dev.m5dev.home',
  sshPort: 'dev.m5dev.ssh-port',
  role: 'dev.m5dev.role',
  /** Unique per m5dev process: lets a failed or interrupted command sweep what it created. */
  session: 'dev.m5dev.session',
} as const;

export type Role = 'toolchain' | 'vm' | 'tool';

/** Labels for a resource; `home` ties per-instance resources to one M5DEV_HOME (tests clean up by it). */
export function baseLabels(role: Role, home?: string): Record<string, string> {
  const labels: Record<string, string> = { [LABELS.managed]: 'true', [LABELS.role]: role };
  if (role !== 'toolchain') labels[LABELS.session] = SESSION_ID;
  if (home) labels[LABELS.home] = home;
  return labels;
}
