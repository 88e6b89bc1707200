/** The CLI as a normal user installs and runs it: `npm pack`, `npm install -g` into the user's own prefix, run with su. */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, type CliResult } from './cli.js';
import { shellQuote } from '../../src/shell.js';

/** npm as another user needs root's CA file (this machine's registry access). */
function cafile(): string {
  return execFileSync('npm', ['config', 'get', 'cafile'], { encoding: 'utf8' }).trim();
}

/** What installForUser made: the binary, and the prefix it lives in (this process's own). */
export interface UserInstall {
  bin: string;
  prefix: string;
  /** The prefix removed (a test's afterAll). */
  remove(): void;
}

/**
 * Pack this checkout and install the tarball for `user` under a prefix of this process's own in the
 * user's home (~/m5dev-prefix-PID: two test runs at once never remove each other's install).
 */
export function installForUser(user: string): UserInstall {
  const dir = mkdtempSync(join(tmpdir(), 'm5dev-pack-'));
  execFileSync('npm', ['pack', '--silent', '--no-update-notifier', '--pack-destination', dir], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  chmodSync(dir, 0o755);
  const tgz = join(dir, readdirSync(dir).find((f) => f.endsWith('.tgz'))!);
  chmodSync(tgz, 0o644);
  const ca = cafile();
  const env = `NPM_CONFIG_UPDATE_NOTIFIER=false ${ca && ca !== 'null' && ca !== 'undefined' ? `NPM_CONFIG_CAFILE=${shellQuote(ca)} ` : ''}`;
  const name = `m5dev-prefix-${process.pid}`;
  execFileSync('su', ['-', user, '-c', `rm -rf ~/${name} && ${env}npm install -g --no-audit --no-fund --prefix ~/${name} ${shellQuote(tgz)} >/dev/null`], { stdio: ['ignore', 'ignore', 'inherit'] });
  rmSync(dir, { recursive: true, force: true });
  const prefix = join(homeOf(user), name);
  return { bin: join(prefix, 'bin', 'm5dev'), prefix, remove: () => rmSync(prefix, { recursive: true, force: true }) };
}

export function homeOf(user: string): string {
  return execFileSync('su', ['-', user, '-c', 'echo $HOME'], { encoding: 'utf8' }).trim();
}

/** Run the installed CLI as `user` from /tmp, with only the given environment added to a login shell's. */
export function userCli(user: string, bin: string, args: string[], env: Record<string, string>): Promise<CliResult> {
  const t0 = Date.now();
  const exports = Object.entries({ CI: 'true', ...env }).map(([k, v]) => `export ${k}=${shellQuote(v)};`).join(' ');
  const child = spawn('su', ['-', user, '-c', `${exports} cd /tmp && ${[bin, ...args].map(shellQuote).join(' ')}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  return new Promise((resolve) =>
    child.on('close', (code, signal) =>
      resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), ms: Date.now() - t0 }),
    ),
  );
}

/** A normal login user (created once), optionally in supplementary groups such as docker. */
export function ensureUser(user: string, groups: string[] = []): void {
  const exists = () => spawnSync('id', [user], { stdio: 'ignore' }).status === 0;
  if (exists()) return;
  const res = spawnSync('useradd', ['-m', '-s', '/bin/bash', ...(groups.length ? ['-G', groups.join(',')] : []), user], { encoding: 'utf8' });
  // A test run beside this one may have made the user first.
  if (res.status !== 0 && !exists()) throw new Error(`useradd ${user} exited ${res.status}: ${res.stderr}`);
}
