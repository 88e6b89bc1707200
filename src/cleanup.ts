/**
 * Disposables for the current command: whatever a step creates (container, temp file) registers
 * its undo here; Ctrl-C/SIGTERM runs them all (newest first) so nothing stray is left behind.
 */
type Disposer = () => Promise<void> | void;

const stack: { fn: Disposer; label: string }[] = [];
let installed = false;
let interrupting = false;

export function onCleanup(label: string, fn: Disposer): () => void {
  const entry = { fn, label };
  stack.push(entry);
  return () => {
    const i = stack.indexOf(entry);
    if (i >= 0) stack.splice(i, 1);
  };
}

export async function runCleanups(): Promise<void> {
  while (stack.length > 0) {
    const entry = stack.pop()!;
    try {
      await entry.fn();
    } catch (e) {
      process.stderr.write(`m5dev: cleanup "${entry.label}" failed: ${(e as Error).message}\n`);
    }
  }
}

export function isInterrupting(): boolean {
  return interrupting;
}

/** Install SIGINT/SIGTERM handlers once: run cleanups, then exit 130 (143 for TERM). */
export function installSignalHandlers(onInterrupt: (signal: NodeJS.Signals) => void): void {
  if (installed) return;
  installed = true;
  const handler = (signal: NodeJS.Signals) => {
    if (interrupting) return;
    interrupting = true;
    onInterrupt(signal);
    void runCleanups().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}
