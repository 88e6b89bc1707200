/** The arm64 cloud-image fixture (built by scripts/build-test-image.sh, cached outside the checkout). */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { ROOT } from './cli.js';

export interface Fixture {
  dir: string;
  image: string;
  sha256: string;
}

export function fixture(): Fixture {
  const dir = process.env.M5DEV_FIXTURE_DIR || execFileSync('bash', [join(ROOT, 'scripts', 'build-test-image.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  const image = readdirSync(dir).find((f) => f.endsWith('.img'));
  if (!image) throw new Error(`no .img in fixture dir ${dir}`);
  const sums = readFileSync(join(dir, 'SHA256SUMS'), 'utf8');
  const sha256 = sums.split(/\s+/)[0]!;
  return { dir, image, sha256 };
}

/** A port that is free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
