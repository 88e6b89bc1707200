/**
 * What every bench group uses: the m5dev runs, timing and medians, the result rows, the fixture,
 * the built kernel, and the steps several groups share (up → SSH, a settled guest, exec true,
 * suspend → resume). The groups are in groups/, registered in run.ts.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, cpSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { hostControlPath } from '../src/ssh/args.js';
import { privateControlDir } from '../src/ssh/control-dir.js';
import { kernelTestHome } from '../test/helpers/kernel.js';

export const ROOT = resolve(import.meta.dirname ?? '.', '..', '..');
export const CLI = join(ROOT, 'dist', 'cli', 'main.js');
export const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** The kernel tests' home by default (test/helpers/kernel.ts), so the kernel they built is reused. */
export const HOME = process.env.BENCH_HOME ?? kernelTestHome();
/** The instance the groups that need "the bench guest" share. */
export const NAME = 'bench';
export const PORT = Number(process.env.BENCH_PORT ?? 5655);
const env = { ...process.env, M5DEV_HOME: HOME, CI: 'true' };

export interface Run {
  code: number;
  ms: number;
  stdout: string;
  stderr: string;
}

export function m5dev(args: string[], extraEnv: NodeJS.ProcessEnv = {}, stdinFile?: string, cli = CLI): Promise<Run> {
  const t0 = performance.now();
  return new Promise((done) => {
    const stdin = stdinFile ? openSync(stdinFile, 'r') : 'ignore';
    const child = spawn(process.execPath, [cli, ...args], { env: { ...env, ...extraEnv }, stdio: [stdin, 'pipe', 'pipe'] });
    if (typeof stdin === 'number') closeSync(stdin);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => err.push(c));
    child.on('close', (code) => done({ code: code ?? 1, ms: performance.now() - t0, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
  });
}

export async function must(args: string[], extraEnv: NodeJS.ProcessEnv = {}, stdinFile?: string, cli = CLI): Promise<Run> {
  const r = await m5dev(args, extraEnv, stdinFile, cli);
  if (r.code !== 0) throw new Error(`m5dev ${args.join(' ')} failed (${r.code}):\n${r.stderr.slice(-2000)}`);
  return r;
}

/** Wall time of a command that must succeed. */
export function timed(cmd: string, args: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status})`);
  return performance.now() - t0;
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export async function sample(runs: number, once: () => Promise<number>): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) xs.push(await once());
  return median(xs);
}

export type Unit = 'ms' | 'MiB';
export const rows: { group: string; what: string; ms: number; vs?: { label: string; ms: number }; unit: Unit }[] = [];
/** A row: a time in ms, or (unit MiB) an amount, with what it is compared with, in the same unit. */
export function record(group: string, what: string, ms: number, vs?: { label: string; ms: number }, unit: Unit = 'ms'): void {
  rows.push({ group, what, ms, vs, unit });
  process.stderr.write(`bench: ${what}: ${show(ms, unit)}${vs ? ` (${vs.label}: ${show(vs.ms, unit)})` : ''}\n`);
}
export const show = (v: number, unit: Unit) => (unit === 'MiB' ? `${v.toFixed(0)} MiB` : fmt(v));
export const fmt = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : ms >= 10 ? `${ms.toFixed(0)} ms` : `${(ms * 1000).toFixed(0)} µs`);

export function fixtureImage(): { url: string; sha256: string } {
  const dir = process.env.M5DEV_FIXTURE_DIR;
  if (!dir) throw new Error('M5DEV_FIXTURE_DIR is not set: run `make bench`');
  const img = readdirSync(dir).find((f) => f.endsWith('.img'))!;
  return { url: `file://${join(dir, img)}`, sha256: readFileSync(join(dir, 'SHA256SUMS'), 'utf8').split(/\s+/)[0]! };
}

export function builtKernel(): string | undefined {
  const dir = join(HOME, 'kernels');
  if (!existsSync(dir)) return undefined;
  return readdirSync(dir).find((f) => f.endsWith('.latest.json'))?.replace(/\.latest\.json$/, '');
}

/** Milliseconds a guest command took, measured in the guest (no SSH or m5dev start in it). */
export async function inGuestMs(command: string, name = NAME): Promise<number> {
  const r = await must(['exec', '--name', name, '--', `s=$(date +%s%N); ${command} >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 ))`]);
  return Number(r.stdout.trim().split('\n').pop());
}

/** Memory the engine accounts to a container (docker stats), in MiB. */
export function containerMiB(id: string): number {
  const out = spawnSync('docker', ['stats', '--no-stream', '--format', '{{.MemUsage}}', id], { encoding: 'utf8' }).stdout.trim();
  const m = /^([\d.]+)\s*([KMG]i?B)/.exec(out);
  if (!m) throw new Error(`docker stats: ${out}`);
  return Number(m[1]) * ({ KiB: 1 / 1024, MiB: 1, GiB: 1024 } as Record<string, number>)[m[2]!]!;
}

/** Time from `m5dev up` to its first successful SSH command (up returns right then). */
export async function upToShell(extra: string[]): Promise<number> {
  await must(['down', '--name', NAME]);
  const r = await must(['up', '--name', NAME, '--ssh-port', String(PORT), ...extra]);
  return r.ms;
}

/**
 * A guest a developer works in has finished booting: wait for systemd's boot jobs (cloud-init's
 * last stages, timers) and a quiet moment, so the no-op and resume rows do not measure them.
 */
export async function settled(extraEnv: NodeJS.ProcessEnv = {}): Promise<void> {
  await m5dev(['exec', '--name', NAME, '--', 'sudo systemctl is-system-running --wait >/dev/null'], extraEnv);
  await new Promise((r) => setTimeout(r, 20_000));
}

/**
 * `exec true` on a reused SSH connection (median of 10), recorded against what it is made of, measured
 * right after it: Node's own start, and plain ssh through the same shared connection without m5dev.
 */
export async function execTrue(guest: string): Promise<number> {
  await must(['exec', '--name', NAME, '--', 'true']); // opens the shared connection
  const plain = plainSshArgs();
  // Interleaved, 15 rounds of all three: the guest's load drifts, and a ratio should not see it.
  const exec: number[] = [];
  const nodeStart: number[] = [];
  const rawSsh: number[] = [];
  for (let i = 0; i < 15; i++) {
    exec.push((await must(['exec', '--name', NAME, '--', 'true'])).ms);
    nodeStart.push(timed(process.execPath, ['-e', '0']));
    rawSsh.push(timed('ssh', plain));
  }
  record('no-op overhead', `exec true, reused SSH connection, ${guest}`, median(exec), { label: 'node -e 0 + plain ssh on that connection', ms: median(nodeStart) + median(rawSsh) });
  record('no-op overhead', `plain ssh true on the shared connection (no m5dev), ${guest}`, median(rawSsh), { label: 'node -e 0', ms: median(nodeStart) });
  return median(exec);
}

/** `ssh true` through m5dev's shared connection, without m5dev: the guest's own answer time. */
export function plainSshArgs(): string[] {
  const control = hostControlPath(join(HOME, 'instances', NAME), privateControlDir());
  return ['-F', '/dev/null', '-o', `ControlPath=${control}`, '-o', 'ControlMaster=no', '-o', 'BatchMode=yes', '-p', String(PORT), 'ubuntu@127.0.0.1', 'true'];
}

/** Median of 10 plain `ssh true` through m5dev's shared connection (no m5dev process). */
export async function plainSshTrue(): Promise<number> {
  await must(['exec', '--name', NAME, '--', 'true']); // opens the shared connection
  return sample(10, async () => timed('ssh', plainSshArgs()));
}

/** Median resume and suspend times over RUNS suspend → up cycles of the running guest. */
export async function suspendResume(extraEnv: NodeJS.ProcessEnv = {}): Promise<{ resume: number; suspend: number }> {
  const suspends: number[] = [];
  const resume = await sample(RUNS, async () => {
    suspends.push((await must(['suspend', '--name', NAME], extraEnv)).ms);
    const r = await must(['--json', 'up', '--name', NAME, '--ssh-port', String(PORT)], extraEnv);
    if (!(JSON.parse(r.stdout) as { resumed: boolean }).resumed) throw new Error('up did not resume the suspended guest');
    return r.ms;
  });
  return { resume, suspend: median(suspends) };
}

/** MiB the host wrote back to disk (all of it, /proc/vmstat nr_written) in 30 s; undefined off Linux. */
export async function writtenWhileIdle(): Promise<number | undefined> {
  const written = () => Number(/^nr_written (\d+)$/m.exec(readFileSync('/proc/vmstat', 'utf8'))?.[1]);
  if (!existsSync('/proc/vmstat')) return undefined;
  const before = written();
  await new Promise((r) => setTimeout(r, 30_000));
  return ((written() - before) * 4096) / 2 ** 20;
}

export function docker(args: string[]): string {
  const r = spawnSync('docker', args, { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  if (r.status !== 0) throw new Error(`docker ${args.slice(0, 2).join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** A copy of the m5 module's tree to edit or share (`guestOwned`: owned by the guest user's uid, as a laptop user's files). */
export function moduleCopy(prefix: string, guestOwned = false): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cpSync(join(ROOT, 'module'), dir, { recursive: true });
  if (guestOwned) spawnSync('chown', ['-R', '1000:1000', dir]);
  return dir;
}

let edits = 0;
/** An edit of m5.c that changes its content (a rebuild follows). */
export function editModule(src: string): void {
  writeFileSync(join(src, 'm5.c'), `${readFileSync(join(src, 'm5.c'), 'utf8')}\n/* edit ${++edits} ${Date.now()} */\n`);
}

/** The guest's gcc and make as .debs (scripts/guest-cc-debs.sh), a directory to share into the guest. */
export function guestCcDebs(): string {
  return spawnSync('bash', [join(ROOT, 'scripts', 'guest-cc-debs.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).stdout.trim();
}
