/** The ssh control sockets' directory: private to the user, whatever was there before. */
import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { privateControlDir } from '../../src/ssh/control-dir.js';
import { UsageError } from '../../src/errors.js';

describe('privateControlDir', () => {
  it('makes $XDG_RUNTIME_DIR/m5dev with mode 0700', () => {
    const run = mkdtempSync(join(tmpdir(), 'm5dev-xdg-'));
    const dir = privateControlDir({ XDG_RUNTIME_DIR: run });
    expect(dir).toBe(join(run, 'm5dev'));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('tightens a directory of ours that others could enter', () => {
    const run = mkdtempSync(join(tmpdir(), 'm5dev-xdg-'));
    mkdirSync(join(run, 'm5dev'), { mode: 0o755 });
    expect(statSync(privateControlDir({ XDG_RUNTIME_DIR: run })).mode & 0o777).toBe(0o700);
  });

  it('refuses a symlink planted in its place', () => {
    const run = mkdtempSync(join(tmpdir(), 'm5dev-xdg-'));
    symlinkSync(mkdtempSync(join(tmpdir(), 'm5dev-elsewhere-')), join(run, 'm5dev'));
    expect(() => privateControlDir({ XDG_RUNTIME_DIR: run })).toThrow(UsageError);
  });
});
