/**
 * vitest's global setup: every scratch file of a run (each test's M5DEV_HOME, served images, the
 * CLI's own temporary files) goes under one directory of the run's, removed when the run ends, so
 * that runs leave nothing in /tmp (a guest test's home holds a cached base image and its disks).
 * Like /tmp it is world-writable and sticky: the other users of the engine tests reach their files.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'm5dev-test-run-'));
  chmodSync(dir, 0o1777);
  process.env.TMPDIR = dir;
  return () => {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch (e) {
      // A mount a test left behind (it unmounts its own in afterAll): say so, leave the rest.
      process.stderr.write(`m5dev tests: could not remove ${dir}: ${(e as Error).message}\n`);
    }
  };
}
