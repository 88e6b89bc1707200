/** abortCommand (src/cleanup.ts): a command stopped from outside its flow, as a lost lock stops it. Its own file: its state is the process's. */
import { describe, expect, it, vi } from 'vitest';
import { abortCommand, interruptExitCode, isInterrupting, onCleanup } from '../../src/cleanup.js';

describe('abortCommand', () => {
  it('says why, runs the undo actions, then exits with its code; a second abort changes nothing', async () => {
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const log: string[] = [];
      onCleanup('container', async () => {
        await new Promise((r) => setTimeout(r, 5));
        log.push('removed');
      });
      expect(interruptExitCode()).toBeUndefined();
      abortCommand('m5dev: the lock was taken over\n', 15);
      expect(isInterrupting()).toBe(true);
      expect(exit).not.toHaveBeenCalled(); // not before the undo actions are done
      await vi.waitFor(() => expect(exit).toHaveBeenCalled());
      expect(log).toEqual(['removed']);
      expect(exit.mock.calls).toEqual([[15]]);
      expect(stderr.mock.calls.map((c) => String(c[0]))).toEqual(['m5dev: the lock was taken over\n']);
      expect(interruptExitCode()).toBe(15);
      abortCommand('again\n', 3);
      await new Promise((r) => setTimeout(r, 20));
      expect(exit.mock.calls).toEqual([[15]]);
      expect(interruptExitCode()).toBe(15);
    } finally {
      exit.mockRestore();
      stderr.mockRestore();
    }
  });
});
