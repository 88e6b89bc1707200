/**
 * How a failure becomes an exit code and a message (cli/program.ts reportError): a typed error its
 * own code, message and hint; anything else exit 1, said to be a bug, with no stack trace unless
 * M5DEV_DEBUG asks for one. And a damaged instance state file is a typed error, not a bug.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reportError } from '../../src/cli/program.js';
import { ExitCode, ShareError, UsageError } from '../../src/errors.js';
import { instanceFiles, readState } from '../../src/vm/instance.js';
import { sessionOf, startSession } from '../../src/session.js';

function report(e: unknown): { code: number; stderr: string } {
  let stderr = '';
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
    stderr += String(s);
    return true;
  });
  try {
    return { code: reportError(e), stderr };
  } finally {
    spy.mockRestore();
  }
}

describe('reportError', () => {

  it('a typed error: its code, its message, its details indented and its hint; no stack', () => {
    const r = report(new ShareError('the share is gone', 'Share an existing directory.'));
    expect(r.code).toBe(ExitCode.shareFailed);
    expect(r.stderr).toBe('m5dev: error: the share is gone\nhint: Share an existing directory.\n');
  });

  it('under GitHub Actions, an error is also an ::error annotation on stdout (and only there)', () => {
    let stdout = '';
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
      stdout += String(s);
      return true;
    });
    const { GITHUB_ACTIONS: _, ...rest } = process.env;
    try {
      startSession(sessionOf({ ...rest, GITHUB_ACTIONS: 'true' }));
      const r = report(new ShareError('the share is gone', 'Share an existing directory.'));
      expect(r.code).toBe(ExitCode.shareFailed);
      expect(stdout).toBe('::error title=m5dev (exit 18)::the share is gone%0AShare an existing directory.\n');
      stdout = '';
      startSession(sessionOf(rest));
      report(new ShareError('x', 'y'));
      expect(stdout).toBe('');
    } finally {
      spy.mockRestore();
      startSession(sessionOf({ ...process.env }));
    }
  });

  it('guest words in the message and details reach the terminal as text: no escape sequence but colour', () => {
    const r = report(new ShareError('mount of \u001b]0;title\u0007 failed', 'Look.', 'dmesg: \u001b]52;c;ZXZpbA==\u0007\nline two'));
    expect(r.stderr).toBe('m5dev: error: mount of \\x1b]0;title\\x07 failed\n  | dmesg: \\x1b]52;c;ZXZpbA==\\x07\n  | line two\nhint: Look.\n');
  });

  it(`anything else: exit ${ExitCode.unexpected}, called a bug, the stack only with M5DEV_DEBUG`, () => {
    const bug = new TypeError("Cannot read properties of undefined (reading 'sshPort')");
    const r = report(bug);
    expect(r.code).toBe(ExitCode.unexpected);
    expect(r.stderr).toContain("m5dev: unexpected error: Cannot read properties of undefined (reading 'sshPort')\n");
    expect(r.stderr).toContain('this is a bug in m5dev');
    expect(r.stderr).not.toContain('    at ');
    startSession(sessionOf({ ...process.env, M5DEV_DEBUG: '1' }));
    try {
      const debug = report(bug);
      expect(debug.code).toBe(ExitCode.unexpected);
      expect(debug.stderr).toContain('    at ');
    } finally {
      startSession(sessionOf({ ...process.env }));
    }
  });

  it('a write that ran out of space is a full disk, not a bug', () => {
    const e = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    expect(report(e).code).toBe(ExitCode.diskFull);
  });
});

describe('a damaged instance state file', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is a usage error naming the file and the way out, for cut JSON and for JSON that is no record', () => {
    dir = mkdtempSync(join(tmpdir(), 'm5dev-state-'));
    const files = instanceFiles(join(dir, 'box'));
    mkdirSync(files.dir);
    for (const text of ['{"name": "box", "sshPort": 56', '[1, 2]', 'null']) {
      writeFileSync(files.state, text);
      const e = (() => {
        try {
          readState(files);
          return undefined;
        } catch (err) {
          return err;
        }
      })();
      expect(e, text).toBeInstanceOf(UsageError);
      expect((e as UsageError).message).toContain(`the state file of instance box (${files.state}) is damaged`);
      expect((e as UsageError).hint).toContain('m5dev destroy --name box');
      expect(report(e).code).toBe(ExitCode.usage);
    }
    writeFileSync(files.state, JSON.stringify({ name: 'box', sshPort: 5555 }));
    expect(readState(files)?.sshPort).toBe(5555);
  });
});
