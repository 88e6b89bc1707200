/**
 * Ready = an SSH command succeeded with the pinned host key (slirp accepts TCP before sshd runs,
 * so a TCP connect proves nothing). While waiting: show the console's last line; fail early when
 * QEMU exits or the kernel panics, with the last console lines.
 */
import { BootError, tail } from '../errors.js';

export const PANIC_PATTERNS = [/Kernel panic - not syncing/, /end Kernel panic/, /VFS: Unable to mount root fs/];

/** Pure: the reason a console text shows a failed boot, if any. */
export function bootFailure(consoleText: string): string | undefined {
  for (const re of PANIC_PATTERNS) {
    const m = re.exec(consoleText);
    if (m) return m[0];
  }
  return undefined;
}

/** Pure: last printable console line, for progress display. */
export function lastConsoleLine(consoleText: string): string {
  // eslint-disable-next-line no-control-regex -- the console's ANSI escape sequences are what is removed
  const lines = consoleText.replace(/\x1b\[[0-9;?=]*[A-Za-z]/g, '').split(/\r?\n|\r/).map((l) => l.replace(/[^\x20-\x7e]/g, '').trim());
  for (const line of [...lines].reverse()) if (line) return line.slice(0, 160);
  return '';
}

export interface ReadinessProbe {
  /** The console's tail, wherever it is kept (a client file, or a volume read through the VM container). */
  readConsole: () => Promise<string>;
  timeoutMs: number;
  intervalMs?: number;
  /** One SSH attempt: exit code 0 means ready. */
  probe: () => Promise<{ exitCode: number; stderr: string }>;
  /** Whether QEMU is still running. */
  alive: () => Promise<boolean>;
  onProgress?: (line: string) => void;
}

export async function waitForSsh(r: ReadinessProbe): Promise<number> {
  const start = Date.now();
  let lastSshError: string;
  for (;;) {
    const text = await r.readConsole();
    const failure = bootFailure(text);
    if (failure) throw new BootError(`Guest failed to boot: ${failure}`, tail(text, 30));
    if (!(await r.alive())) throw new BootError('QEMU exited before the guest was reachable', tail(await r.readConsole().catch(() => text), 30));
    r.onProgress?.(lastConsoleLine(text));
    const res = await r.probe();
    if (res.exitCode === 0) return (Date.now() - start) / 1000;
    lastSshError = res.stderr.trim().split('\n').pop() ?? '';
    if (Date.now() - start > r.timeoutMs) {
      throw new BootError(
        `Guest not reachable over SSH after ${Math.round(r.timeoutMs / 1000)} s (last ssh error: ${lastSshError || 'none'})`,
        tail(await r.readConsole().catch(() => text), 30),
        'Raise --boot-timeout, or check the console with `m5dev logs`.',
      );
    }
    await new Promise((res2) => setTimeout(res2, r.intervalMs ?? 2000));
  }
}
