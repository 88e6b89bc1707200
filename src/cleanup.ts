/**
 * Undo actions. An operation opens a scope (`await using scope = cleanupScope(…)`) and defers the
 * undo of what it makes (a container, a partial file) on it: when the operation ends, the scope
 * runs them newest first, unless the operation `keep()`s what it made (a guest that answered is
 * the user's). While a scope is open, Ctrl-C/SIGTERM runs its undo actions too: every open scope
 * sits on the one stack the signal handler empties, so nothing stray is left behind.
 */
type Disposer = () => Promise<void> | void;

const stack: { fn: Disposer; label: string }[] = [];
let installed = false;
let interrupting = false;
let signalled: NodeJS.Signals | undefined;

export function onCleanup(label: string, fn: Disposer): () => void {
  const entry = { fn, label };
  stack.push(entry);
  return () => {
    const i = stack.indexOf(entry);
    if (i >= 0) stack.splice(i, 1);
  };
}

/** An operation's undo actions (see the file's header). */
export class CleanupScope implements AsyncDisposable {
  private readonly entries: { fn: Disposer; label: string; onKeep?: () => void }[] = [];
  private readonly unregister: () => void;

  constructor(readonly label: string) {
    this.unregister = onCleanup(label, () => drain(this.entries));
  }

  /** Undo `fn` when the scope ends without keep(); `onKeep` runs instead when it is kept. A handle to drop it early (its job is done). */
  defer(label: string, fn: Disposer, onKeep?: () => void): () => void {
    const entry = { fn, label, onKeep };
    this.entries.push(entry);
    return () => {
      const i = this.entries.indexOf(entry);
      if (i >= 0) this.entries.splice(i, 1);
    };
  }

  /** What the operation made so far stays: nothing deferred until now is undone. */
  keep(): void {
    for (const e of this.entries.splice(0)) e.onKeep?.();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.unregister();
    await drain(this.entries);
  }
}

export function cleanupScope(label: string): CleanupScope {
  return new CleanupScope(label);
}

/**
 * Every open scope's undo actions (the signal path), and then any that another path has under way:
 * a scope that ended as the signal came (its operation failed because the signal stopped a
 * container) runs its own undo, which must finish before the process exits.
 */
export async function runCleanups(): Promise<void> {
  await drain(stack);
  while (running.size > 0) await Promise.allSettled([...running]);
}

/** Undo actions under way, whichever drain runs them. */
const running = new Set<Promise<void>>();

/** Run undo actions newest first, taking each off `entries` before it runs; one that fails is reported and the rest still run. */
async function drain(entries: { fn: Disposer; label: string }[]): Promise<void> {
  for (let entry = entries.pop(); entry !== undefined; entry = entries.pop()) {
    const undo = (async () => {
      try {
        await entry.fn();
      } catch (e) {
        process.stderr.write(`m5dev: cleanup "${entry.label}" failed: ${(e as Error).message}\n`);
      }
    })();
    running.add(undo);
    try {
      await undo;
    } finally {
      running.delete(undo);
    }
  }
}

export function isInterrupting(): boolean {
  return interrupting;
}

/** The exit code of the signal being handled (129 HUP, 130 INT, 143 TERM) or of an abort, whichever path exits first. */
export function interruptExitCode(): number | undefined {
  return signalled ? SIGNAL_EXIT[signalled] : aborted;
}

let aborted: number | undefined;

/**
 * Stop the command from outside its own flow, as a signal does (a lock lost under it: going on
 * could meet another m5dev on the same files): print `message`, run the cleanups, exit `code`.
 */
export function abortCommand(message: string, code: number): void {
  if (interrupting) return;
  interrupting = true;
  aborted = code;
  process.stderr.write(message);
  void runCleanups().finally(() => process.exit(code));
}

/** The shell's exit code for a death by each signal we handle: 128 + its number. */
const SIGNAL_EXIT: Record<string, number> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };

/**
 * Install handlers once for Ctrl-C, SIGTERM (a cancelled CI job, `docker stop`, `kill`) and SIGHUP
 * (a closed terminal): run the cleanups, then exit 128 + the signal's number.
 */
export function installSignalHandlers(onInterrupt: (signal: NodeJS.Signals) => void): void {
  if (installed) return;
  installed = true;
  const handler = (signal: NodeJS.Signals) => {
    if (interrupting) return;
    interrupting = true;
    signalled = signal;
    // A closed terminal (SIGHUP) fails writes to it: the cleanups must still run.
    for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
    onInterrupt(signal);
    void runCleanups().finally(() => process.exit(SIGNAL_EXIT[signal] ?? 130));
  };
  for (const signal of Object.keys(SIGNAL_EXIT) as NodeJS.Signals[]) process.on(signal, handler);
}
