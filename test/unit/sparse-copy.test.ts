import { describe, expect, it } from 'vitest';
import { closeSync, mkdtempSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allZero, copySparse } from '../../src/sparse-copy.js';

describe('a sparse copy (m5ops out of a file the guest wrote at a far offset)', () => {
  it('keeps every byte and the length, and leaves zeros as holes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'm5dev-sparse-'));
    const from = join(dir, 'far.bin');
    const fd = openSync(from, 'w');
    writeSync(fd, Buffer.from('head'), 0, 4, 0);
    writeSync(fd, Buffer.from('x'), 0, 1, 256 * 2 ** 20); // one byte at 256 MiB
    closeSync(fd);
    const to = join(dir, 'copy.bin');
    copySparse(from, to);
    const st = statSync(to);
    expect(st.size).toBe(256 * 2 ** 20 + 1);
    expect(st.blocks * 512).toBeLessThan(2 ** 20); // not 256 MiB of zeros on disk
    const got = readFileSync(to);
    expect(got.subarray(0, 4).toString()).toBe('head');
    expect(got[got.length - 1]).toBe('x'.charCodeAt(0));
    expect(allZero(got.subarray(4, got.length - 1))).toBe(true);
    // An existing file is never written through.
    expect(() => copySparse(from, to)).toThrow(/EEXIST/);
    expect(allZero(Buffer.from([0, 0, 1]))).toBe(false);
    expect(allZero(Buffer.alloc(3))).toBe(true);
  });
});
