/**
 * A stand-in kernel tarball (issue 34: the kernel build path on every run): test/fixtures/
 * standin-kernel, a tree whose Makefile writes an Image-shaped file, a release and a module tree in
 * a second, packed as kernel.org packs a release (one top directory, .tar.xz), byte-identical
 * from run to run.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './cli.js';
import type { KernelTarball } from './kernel.js';

export const STANDIN_VERSION = '1.2.3';

/** The stand-in packed into `dir` as linux-1.2.3.tar.xz. */
export function standinKernelTarball(dir: string): KernelTarball {
  const file = `linux-${STANDIN_VERSION}.tar.xz`;
  const out = join(dir, file);
  execFileSync('tar', [
    '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0',
    '--transform', `s,^standin-kernel,linux-${STANDIN_VERSION},`,
    '-cJf', out, '-C', join(ROOT, 'test', 'fixtures'), 'standin-kernel',
  ]);
  return { dir, file, version: STANDIN_VERSION, sha256: createHash('sha256').update(readFileSync(out)).digest('hex') };
}

/** One line a stand-in make target recorded about itself (see its Makefile). */
export interface StandinRun {
  target: string;
  uid: number;
  capEff: string;
  net: string[];
  shares: boolean;
}

/** The build's m5dev-standin.log, one entry a target. */
export function standinRuns(log: string): StandinRun[] {
  const runs = new Map<string, Partial<StandinRun>>();
  for (const line of log.split('\n')) {
    const m = /^(\S+) (.*)$/.exec(line);
    if (!m) continue;
    const [, target, rest] = m as unknown as [string, string, string];
    const r = runs.get(target) ?? { target };
    runs.set(target, r);
    const uid = /uid=(\d+)/.exec(rest);
    if (uid) r.uid = Number(uid[1]);
    const cap = /CapEff:\s*([0-9a-f]+)/.exec(rest);
    if (cap) r.capEff = cap[1];
    const net = /^net=(.*)$/.exec(rest);
    if (net) r.net = (net[1] ?? '').split(',').filter(Boolean);
    const shares = /^shares=(yes|no)$/.exec(rest);
    if (shares) r.shares = shares[1] === 'yes';
  }
  return [...runs.values()] as StandinRun[];
}
