/** The kernel source the tests serve in place of kernel.org: Debian's linux-source tarball. */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, cli } from './cli.js';

export interface KernelTarball {
  /** Directory to serve: holds linux-<version>.tar.xz. */
  dir: string;
  file: string;
  version: string;
  sha256: string;
}

export function kernelTarball(): KernelTarball {
  const [path, version] = execFileSync('bash', [join(ROOT, 'scripts', 'kernel-test-tarball.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    .trim()
    .split('\n');
  const dir = mkdtempSync(join(tmpdir(), 'm5dev-kernel-mirror-'));
  const file = `linux-${version}.tar.xz`;
  symlinkSync(path!, join(dir, file));
  const sha256 = createHash('sha256').update(readFileSync(path!)).digest('hex');
  return { dir, file, version: version!, sha256 };
}

/** A persistent M5DEV_HOME for kernel builds, outside the checkout, so CI re-runs reuse the build. */
export function kernelTestHome(): string {
  const base = process.env.M5DEV_FIXTURE_CACHE || join(homedir(), '.cache', 'm5dev-fixtures');
  const home = join(base, 'kernel-home');
  mkdirSync(home, { recursive: true });
  return home;
}

/** `m5dev kernel build` of that tarball from `url` (served, or file://), as every kernel test runs it. */
export function kernelBuildArgs(kt: KernelTarball, url: string, opts: { version?: string; sha256?: string } = {}): string[] {
  return ['kernel', 'build', '--version', opts.version ?? kt.version, '--kernel-url', url, '--kernel-sha256', opts.sha256 ?? kt.sha256];
}

/**
 * A name of this run for an instance in the shared kernel home: two runs at once (two checkouts,
 * a CI job beside a developer's `make test`) never share, or destroy, each other's guest.
 */
export function runInstanceName(base: string): string {
  return `${base}-${process.pid}`;
}

/**
 * Instances an earlier run of this test left in the shared kernel home when it was killed (its
 * process is gone): destroyed, so their disks do not pile up. Live runs' instances are left alone.
 */
export async function sweepDeadRunInstances(home: string, base: string, env: NodeJS.ProcessEnv): Promise<string[]> {
  const dir = join(home, 'instances');
  const dead = (existsSync(dir) ? readdirSync(dir) : []).filter((n) => {
    // `base` alone: the fixed name of the runs before names had a pid.
    const m = new RegExp(`^${base}(?:-(\\d+))?$`).exec(n);
    return m !== null && (m[1] === undefined || (Number(m[1]) !== process.pid && !alive(Number(m[1]))));
  });
  for (const n of dead) await cli(['destroy', '--name', n], env);
  return dead;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
