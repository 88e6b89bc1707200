/**
 * The stand-in for a gem5-resources arm64 image (scripts/gem5-standin-image.sh): the fixture with
 * its own /sbin/init and hook, and the project's m5op (cross-built static in the toolchain image)
 * as `m5`. Made once and cached outside the checkout, keyed by what it is made of (the script,
 * m5op.c, the fixture and the toolchain); the run tests of the local and the remote engine share it.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './cli.js';
import { docker, TEST_LABEL } from './docker.js';
import type { Fixture } from './fixture.js';

const SCRIPT = join(ROOT, 'scripts', 'gem5-standin-image.sh');
const M5OP = join(ROOT, 'module', 'm5op', 'm5op.c');

export async function gem5Standin(fx: Fixture, toolchainTag: string): Promise<string> {
  const key = createHash('sha256').update(readFileSync(SCRIPT)).update(readFileSync(M5OP)).update(fx.sha256).update(toolchainTag).digest('hex').slice(0, 16);
  const root = process.env.M5DEV_FIXTURE_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'm5dev-fixtures');
  const dir = join(root, `gem5-standin-${key}`);
  const image = join(dir, 'gem5-standin.qcow2');
  if (existsSync(image)) return image;
  mkdirSync(root, { recursive: true });
  const work = mkdtempSync(join(root, '.gem5-standin-'));
  try {
    cpSync(M5OP, join(work, 'm5op.c'));
    const [res] = (await docker.run(toolchainTag, ['aarch64-linux-gnu-gcc', '-static', '-O2', '-Wall', '-Werror', '-o', '/w/m5op', '/w/m5op.c'], process.stderr, {
      Labels: { [TEST_LABEL]: 'true' },
      HostConfig: { AutoRemove: true, Binds: [`${work}:/w`] },
    })) as [{ StatusCode: number }];
    if (res.StatusCode !== 0) throw new Error(`m5op did not build (exit ${res.StatusCode})`);
    execFileSync('bash', [SCRIPT, join(fx.dir, fx.image), join(work, 'm5op'), join(work, 'gem5-standin.qcow2')], { stdio: ['ignore', 'inherit', 'inherit'] });
    rmSync(join(work, 'm5op.c'));
    // Whole or not at all: the directory appears by one rename; stand-ins of other inputs go (one is kept).
    renameSync(work, dir);
    for (const old of readdirSync(root)) if (old.startsWith('gem5-standin-') && join(root, old) !== dir) rmSync(join(root, old), { recursive: true, force: true });
    return image;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
