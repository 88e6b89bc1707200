/** The arm64 cloud-image fixture (built by scripts/build-test-image.sh, cached outside the checkout). */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
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

/**
 * A loopback port nothing listens on now, for a test to give m5dev later (`--ssh-port`). Not one the
 * kernel hands out itself (bind to 0): those are ephemeral ports, which any outgoing connection of
 * this machine may take as its source port in the minutes before the test uses it (measured: a CI
 * run's `up --ssh-port` found its port taken). So: a random port below the ephemeral range, above
 * m5dev's own 5555 upward and apart from the test slots' (23751…, 25124…), probed free.
 */
export async function freePort(): Promise<number> {
  const ephemeralLow = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
  // Wide (22,000 ports), so that two lanes' picks held for minutes seldom meet; the probe catches the rest.
  const high = Math.min(32000, ephemeralLow);
  const low = 10000;
  const slots = (p: number) => (p >= 23700 && p < 23800) || (p >= 25100 && p < 25200);
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (slots(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error(`no free loopback port in ${low}-${high}`);
}
