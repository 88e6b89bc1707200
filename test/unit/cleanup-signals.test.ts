/**
 * The signal path of src/cleanup.ts, in-process: the handlers installed once, a signal running every
 * open undo and then exiting 128 + its number, a second signal or an abort during it ignored.
 * (Its own file: the handler's state is the process's, once set it stays.)
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { abortCommand, installSignalHandlers, interruptExitCode, isInterrupting, onCleanup } from '../../src/cleanup.js';

const SIGNALS = ['SIGHUP', 'SIGINT', 'SIGTERM'] as const;
const before = new Map(SIGNALS.map((s) => [s, process.listeners(s)]));

afterAll(() => {
  for (const s of SIGNALS) for (const l of process.listeners(s)) if (!before.get(s)?.includes(l)) process.removeListener(s, l);
});

describe('a signal while m5dev runs', () => {
  it('runs every open undo, newest first, then exits 128 + its number; once: a second signal or an abort changes nothing', async () => {
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const seen: string[] = [];
      installSignalHandlers((s) => seen.push(s));
      installSignalHandlers((s) => seen.push(`again ${s}`)); // installed once
      for (const s of SIGNALS) expect(process.listenerCount(s)).toBe((before.get(s)?.length ?? 0) + 1);
      const log: string[] = [];
      const drop = onCleanup('dropped', () => void log.push('never')); // the bottom of the stack
      onCleanup('first', () => void log.push('undo first'));
      onCleanup('second', () => void log.push('undo second'));
      drop();
      drop(); // twice: it must not take another undo off the stack
      expect(isInterrupting()).toBe(false);
      process.emit('SIGTERM', 'SIGTERM');
      await vi.waitFor(() => expect(exit).toHaveBeenCalled());
      expect(seen).toEqual(['SIGTERM']);
      expect(log).toEqual(['undo second', 'undo first']);
      expect(exit.mock.calls).toEqual([[143]]);
      expect([isInterrupting(), interruptExitCode()]).toEqual([true, 143]);
      // A second signal, and an abort, while the first is handled: nothing more.
      process.emit('SIGINT', 'SIGINT');
      abortCommand('m5dev: lost the lock\n', 15);
      await new Promise((r) => setTimeout(r, 20));
      expect(seen).toEqual(['SIGTERM']);
      expect(exit.mock.calls).toEqual([[143]]);
      expect(stderr.mock.calls.map((c) => String(c[0]))).not.toContain('m5dev: lost the lock\n');
      expect(interruptExitCode()).toBe(143);
    } finally {
      exit.mockRestore();
      stderr.mockRestore();
    }
  });
});
