/** The m5ops plugin's C decisions (names under m5out, quota, log cap), compiled and run on this host. */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/cli.js';

describe("the m5ops plugin's policy (docker/m5ops/m5out-policy.h)", () => {
  it('passes its C checks, built with the host compiler', () => {
    const bin = join(mkdtempSync(join(tmpdir(), 'm5ops-policy-')), 'policy-test');
    execFileSync('cc', ['-std=gnu11', '-Wall', '-Wextra', '-Werror', '-o', bin, join(ROOT, 'test', 'c', 'm5out-policy-test.c')], { stdio: 'inherit' });
    let out: string;
    try {
      out = execFileSync(bin, { encoding: 'utf8' });
    } catch (e) {
      out = (e as { stdout?: string }).stdout ?? '';
    }
    expect(out.split('\n').filter((l) => l.startsWith('not ok'))).toEqual([]);
    expect(out).toMatch(/^1\.\.15$/m);
  });
});
