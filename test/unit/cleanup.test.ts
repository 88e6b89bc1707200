/** Cleanup scopes (src/cleanup.ts): an operation's undo actions, run when it ends unless it keeps what it made. */
import { describe, expect, it, vi } from 'vitest';
import { cleanupScope, runCleanups } from '../../src/cleanup.js';

describe('CleanupScope', () => {
  it('a failing operation is undone, newest first, before its error reaches the caller; a dropped undo does not run', async () => {
    const log: string[] = [];
    const operation = async () => {
      await using scope = cleanupScope('op');
      scope.defer('first', () => void log.push('undo first'));
      const done = scope.defer('done early', () => void log.push('never'));
      scope.defer('second', async () => {
        await new Promise((r) => setTimeout(r, 5));
        log.push('undo second');
      });
      done();
      throw new Error('step failed');
    };
    await expect(operation()).rejects.toThrow('step failed');
    expect(log).toEqual(['undo second', 'undo first']);
  });

  it('keep(): nothing made so far is undone, each keep hook runs; what is deferred after it still is undone', async () => {
    const log: string[] = [];
    {
      await using scope = cleanupScope('up');
      scope.defer('vm', () => void log.push('remove vm'), () => void log.push('vm kept'));
      scope.defer('network', () => void log.push('remove network')); // no keep hook: nothing to run
      scope.keep();
      scope.defer('later', () => void log.push('undo later'));
    }
    expect(log).toEqual(['vm kept', 'undo later']);
  });

  it('a dropped undo stays dropped, the first one too, however often its handle is called; a scope that ends quietly says nothing', async () => {
    const log: string[] = [];
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      {
        await using scope = cleanupScope('op');
        const first = scope.defer('first', () => void log.push('never'));
        scope.defer('second', () => void log.push('undo second'));
        first();
        first(); // again: it must not take another undo off
      }
      expect(log).toEqual(['undo second']);
      // The scope left the signal path's stack when it ended: a signal now runs nothing of it.
      await runCleanups();
      expect(log).toEqual(['undo second']);
      expect(stderr).not.toHaveBeenCalled();
    } finally {
      stderr.mockRestore();
    }
  });

  it('the signal path waits for an undo another path has under way (a scope that ended as the signal came)', async () => {
    const log: string[] = [];
    let release!: () => void;
    const operation = async () => {
      await using scope = cleanupScope('kernel build');
      scope.defer('put the build back', async () => {
        await new Promise<void>((r) => (release = r));
        log.push('put back');
      });
      throw new Error('the container was stopped');
    };
    const failed = operation().catch(() => log.push('operation failed'));
    await new Promise((r) => setTimeout(r, 5)); // the scope's own undo is under way
    let signalPathDone = false;
    const signalPath = runCleanups().then(() => (signalPathDone = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(signalPathDone).toBe(false); // it would exit the process here, the build half put back
    release();
    await signalPath;
    await failed;
    expect(log).toEqual(['put back', 'operation failed']);
  });

  it('one undo that fails is reported and the rest still run', async () => {
    const log: string[] = [];
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      {
        await using scope = cleanupScope('op');
        scope.defer('a', () => void log.push('a'));
        scope.defer('b', () => {
          throw new Error('engine said no');
        });
      }
      expect(log).toEqual(['a']);
      expect(stderr.mock.calls.map((c) => String(c[0])).join('')).toMatch(/cleanup "b" failed: engine said no/);
    } finally {
      stderr.mockRestore();
    }
  });

  it('while a scope is open, the signal path (runCleanups) undoes it; once ended, it is no longer on that stack', async () => {
    const log: string[] = [];
    {
      await using scope = cleanupScope('op');
      scope.defer('tool container', () => void log.push('removed'));
      await runCleanups(); // Ctrl-C during the operation
      expect(log).toEqual(['removed']);
    }
    expect(log).toEqual(['removed']); // not twice
    {
      await using scope = cleanupScope('op2');
      scope.defer('x', () => void log.push('x'));
    }
    await runCleanups();
    expect(log).toEqual(['removed', 'x']);
  });
});
