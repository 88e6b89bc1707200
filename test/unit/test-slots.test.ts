/** The tests' own slots (test/helpers/slots.ts): two runs at once never take one remote engine or registry port. */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { holdSlot } from '../helpers/slots.js';

/** The PID of a process that has exited. */
function deadPid(): number {
  const res = spawnSync('sh', ['-c', 'echo $$']);
  return Number(res.stdout.toString().trim());
}

describe('test slots', () => {
  it('skips a slot a live process holds, takes over a dead holder\'s, and keeps it for this process', () => {
    const root = mkdtempSync(join(tmpdir(), 'm5dev-slots-'));
    mkdirSync(join(root, 'eng-0'));
    writeFileSync(join(root, 'eng-0', 'pid'), String(process.ppid));
    mkdirSync(join(root, 'eng-1'));
    writeFileSync(join(root, 'eng-1', 'pid'), String(deadPid()));
    expect(holdSlot('eng', 4, root)).toBe(1);
    expect(readFileSync(join(root, 'eng-1', 'pid'), 'utf8')).toBe(String(process.pid));
    expect(holdSlot('eng', 4, root)).toBe(1);
    // Another kind is counted apart.
    expect(holdSlot('reg', 4, root)).toBe(0);
  });

  it('a slot being taken (no PID yet, just made) is not taken over; all held is an error that says where', () => {
    const root = mkdtempSync(join(tmpdir(), 'm5dev-slots-'));
    mkdirSync(join(root, 'x-0'));
    expect(() => holdSlot('x', 1, root)).toThrow(`all 1 test slots of x are held by running processes (${root})`);
  });
});
