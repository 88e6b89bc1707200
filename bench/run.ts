/**
 * m5dev benchmarks (`make bench`): every figure is a median of several runs, measured side by side
 * in this one run on this machine, and printed as a Markdown table with ratios.
 *
 *  A. time to a shell: `m5dev up` (artefacts cached) until the first SSH command succeeds,
 *     against the manual recipe's QEMU command run in the same toolchain image on the same disk;
 *     UEFI + GRUB vs direct kernel boot; -cpu cortex-a57 vs max,pauth-impdef=on.
 *  B. no-op overheads: cached `image build`, `status`, `exec true` with and without a reused SSH connection
 *     (on a guest that has finished booting).
 *  C. module edit → rebuilt → loaded in the guest.
 *  D. suspend, and `m5dev up` resuming the suspended guest, against a cold boot.
 *  E. compiling kernel files: the toolchain container's cross gcc 12 against gcc 12 inside the guest
 *     (TCG), on the same preprocessed files with the kernel build's own flags.
 *  F. a remote engine (scripts/engines/remote-engine.sh: own filesystem and network, tcp://) beside
 *     the local one, same fixture and toolchain image: first up (artefacts made, image copied in),
 *     up → SSH from a stopped instance, resume, exec true on a reused connection.
 *  G. the local rootful engine, this checkout against an older m5dev (BENCH_BASE_CLI=…/dist/cli/main.js,
 *     e.g. a worktree of the commit before the engine seam), alternating on one running guest:
 *     exec true, status, up of a running instance, suspend → resume.
 *  H. the guest workflow (up --share, in-guest builds): the m5 module built *in the guest* against
 *     /lib/modules/$(uname -r)/build with its sources on the 9p share against the same tree on the
 *     guest's disk; reading 50 MiB from the share against the disk; `m5dev cp` of the tree. With
 *     BENCH_BASE_CLI, also the share's 9p export against the base's (mapped-xattr vs none).
 *  I. N guests side by side (N = 1, 2, 4; 2 GiB each; `m5dev up --name … --name …`, new instances,
 *     qcow2 overlays): time until every one answers SSH, and host memory per guest once they idle
 *     (the VM container's memory: QEMU plus the guest RAM it touched, in the container's tmpfs);
 *     and what the one guest's first boot spent its time on (systemd-analyze).
 *  J. QEMU's TCG code cache: m5dev's default (--tcg-cache 256) against QEMU's own 1 GiB, one
 *     instance each, one after the other: first boot (UEFI), host memory once idle, and an in-guest
 *     gcc build (the m5 module, direct-boot kernel, gcc from a share), which runs far more code.
 *  K. m5ops: a sum round trip through the m5 module's mapping and QEMU's m5ops device (in the
 *     guest, averaged over 20000 calls), and reading 20 MiB in the guest: `m5 readfile` (the project's
 *     m5op client) against `cat` of the same file from the 9p share and streamed in over SSH.
 *
 * Env: M5DEV_FIXTURE_DIR (fixture image dir, set by make), BENCH_RUNS (default 3), BENCH_ONLY (e.g. A,D),
 * BENCH_HOME (default the kernel tests' persistent home, so the built kernel is reused).
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, cpSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, homedir, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { hostControlPath } from '../src/ssh/args.js';
import { privateControlDir } from '../src/ssh/control-dir.js';
import { DEFAULTS } from '../src/config.js';

const ROOT = resolve(import.meta.dirname ?? '.', '..', '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const HOME = process.env.BENCH_HOME ?? join(process.env.M5DEV_FIXTURE_CACHE ?? join(homedir(), '.cache', 'm5dev-fixtures'), 'kernel-home');
const NAME = 'bench';
const PORT = Number(process.env.BENCH_PORT ?? 5655);
const env = { ...process.env, M5DEV_HOME: HOME, CI: 'true' };
/** BENCH_ONLY=A,D: run only these groups (letters as in the header comment). */
const ONLY = process.env.BENCH_ONLY?.toUpperCase().split(',');
const want = (group: string) => !ONLY || ONLY.includes(group);

interface Run {
  code: number;
  ms: number;
  stdout: string;
  stderr: string;
}

function m5dev(args: string[], extraEnv: NodeJS.ProcessEnv = {}, stdinFile?: string, cli = CLI): Promise<Run> {
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

async function must(args: string[], extraEnv: NodeJS.ProcessEnv = {}, stdinFile?: string, cli = CLI): Promise<Run> {
  const r = await m5dev(args, extraEnv, stdinFile, cli);
  if (r.code !== 0) throw new Error(`m5dev ${args.join(' ')} failed (${r.code}):\n${r.stderr.slice(-2000)}`);
  return r;
}

/** Wall time of a command that must succeed. */
function timed(cmd: string, args: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status})`);
  return performance.now() - t0;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function sample(runs: number, once: () => Promise<number>): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) xs.push(await once());
  return median(xs);
}

type Unit = 'ms' | 'MiB';
const rows: { group: string; what: string; ms: number; vs?: { label: string; ms: number }; unit: Unit }[] = [];
/** A row: a time in ms, or (unit MiB) an amount, with what it is compared with, in the same unit. */
function record(group: string, what: string, ms: number, vs?: { label: string; ms: number }, unit: Unit = 'ms'): void {
  rows.push({ group, what, ms, vs, unit });
  process.stderr.write(`bench: ${what}: ${show(ms, unit)}${vs ? ` (${vs.label}: ${show(vs.ms, unit)})` : ''}\n`);
}
const show = (v: number, unit: Unit) => (unit === 'MiB' ? `${v.toFixed(0)} MiB` : fmt(v));
const fmt = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : ms >= 10 ? `${ms.toFixed(0)} ms` : `${(ms * 1000).toFixed(0)} µs`);

function fixtureImage(): { url: string; sha256: string } {
  const dir = process.env.M5DEV_FIXTURE_DIR;
  if (!dir) throw new Error('M5DEV_FIXTURE_DIR is not set: run `make bench`');
  const img = readdirSync(dir).find((f) => f.endsWith('.img'))!;
  return { url: `file://${join(dir, img)}`, sha256: readFileSync(join(dir, 'SHA256SUMS'), 'utf8').split(/\s+/)[0]! };
}

function builtKernel(): string | undefined {
  const dir = join(HOME, 'kernels');
  if (!existsSync(dir)) return undefined;
  return readdirSync(dir).find((f) => f.endsWith('.latest.json'))?.replace(/\.latest\.json$/, '');
}

/** Milliseconds a guest command took, measured in the guest (no SSH or m5dev start in it). */
async function inGuestMs(command: string, name = NAME): Promise<number> {
  const r = await must(['exec', '--name', name, '--', `s=$(date +%s%N); ${command} >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 ))`]);
  return Number(r.stdout.trim().split('\n').pop());
}

async function guestWorkflow(kernel: string): Promise<void> {
  const debs = spawnSync('bash', [join(ROOT, 'scripts', 'guest-cc-debs.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).stdout.trim();
  const work = mkdtempSync(join(tmpdir(), 'm5dev-bench-share-'));
  cpSync(join(ROOT, 'module'), work, { recursive: true });
  spawnSync('chown', ['-R', '1000:1000', work]);
  await must(['down', '--name', NAME]);
  await must(['up', '--name', NAME, '--kernel', kernel, '--ssh-port', String(PORT), '--share', `${work}:m5`, '--share', `${debs}:/opt/debs`]);
  await must(['exec', '--name', NAME, '--', readFileSync(join(ROOT, 'scripts', 'guest-cc-install.sh'), 'utf8')]);
  await must(['exec', '--name', NAME, '--', 'rm -rf ~/m5-disk /var/tmp/debs && cp -a ~/m5 ~/m5-disk && cp -a /opt/debs /var/tmp/debs && sync']);
  await settled();
  const build = (dir: string) => inGuestMs(`cd ${dir} && make clean && make`);
  const onShare = await sample(RUNS, () => build('~/m5'));
  const onDisk = await sample(RUNS, () => build('~/m5-disk'));
  record('guest workflow', 'in-guest make of m5 against /lib/modules/V/build, sources on the 9p share', onShare, { label: 'same tree on the guest disk', ms: onDisk });
  // Cold reads: the guest's page cache dropped before each.
  const read = (dir: string) => inGuestMs(`sync; echo 3 | sudo tee /proc/sys/vm/drop_caches >/dev/null; cat ${dir}/*.deb | wc -c`);
  const readShare = await sample(RUNS, () => read('/opt/debs'));
  const readDisk = await sample(RUNS, () => read('/var/tmp/debs'));
  record('guest workflow', 'read 50 MiB of .debs, cold, from the 9p share', readShare, { label: 'from the guest disk', ms: readDisk });
  const copied = await sample(RUNS, async () => (await must(['cp', '--name', NAME, work, 'guest:/home/ubuntu/m5-cp'])).ms);
  record('guest workflow', 'm5dev cp of the module tree into the guest', copied);
  rmSync(work, { recursive: true, force: true });
}

/**
 * Group H with BENCH_BASE_CLI: the share's 9p export of this checkout (mapped-xattr: what the guest
 * sets kept in xattrs) against the base's (security_model=none), on one instance, one after the
 * other: an in-guest build on the share, a cold read, and a metadata-heavy copy (kernel headers into
 * the share, listed with their owners, removed).
 */
async function shareModes(kernel: string, base: string): Promise<void> {
  const debs = spawnSync('bash', [join(ROOT, 'scripts', 'guest-cc-debs.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).stdout.trim();
  const work = mkdtempSync(join(tmpdir(), 'm5dev-bench-9p-'));
  cpSync(join(ROOT, 'module'), work, { recursive: true });
  spawnSync('chown', ['-R', '1000:1000', work]);
  const measure = async (cli: string) => {
    await must(['down', '--name', NAME], {}, undefined, cli);
    await must(['up', '--name', NAME, '--kernel', kernel, '--ssh-port', String(PORT), '--share', `${work}:m5`, '--share', `${debs}:/opt/debs`], {}, undefined, cli);
    await must(['exec', '--name', NAME, '--', readFileSync(join(ROOT, 'scripts', 'guest-cc-install.sh'), 'utf8')], {}, undefined, cli);
    await settled();
    const build = await sample(RUNS, () => inGuestMs('cd ~/m5 && make clean && make'));
    const read = await sample(RUNS, () => inGuestMs('sync; echo 3 | sudo tee /proc/sys/vm/drop_caches >/dev/null; cat /opt/debs/*.deb | wc -c'));
    const meta = await sample(RUNS, () => inGuestMs('cp -r /usr/src/linux-headers-$(uname -r)/include ~/m5/hdr && ls -lR ~/m5/hdr | wc -l && rm -rf ~/m5/hdr'));
    return { build, read, meta };
  };
  const mine = await measure(CLI);
  const theirs = await measure(base);
  record('9p export', 'in-guest make of m5 on the share, mapped-xattr', mine.build, { label: 'security_model=none (base)', ms: theirs.build });
  record('9p export', 'read 50 MiB of .debs, cold, from the share, mapped-xattr', mine.read, { label: 'security_model=none (base)', ms: theirs.read });
  record('9p export', "copy the kernel's include/ into the share, ls -lR, rm -rf, mapped-xattr", mine.meta, { label: 'security_model=none (base)', ms: theirs.meta });
  await must(['down', '--name', NAME]);
  rmSync(work, { recursive: true, force: true });
}

/** Group K: m5ops answered by QEMU, against the other ways a guest gets host bytes. */
async function m5ops(image: { url: string; sha256: string }, kernel: string): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'm5dev-bench-m5ops-'));
  chmodSync(work, 0o755); // the guest user reads the share
  const file = join(work, 'data.bin');
  spawnSync('head', ['-c', String(20 * 2 ** 20), '/dev/urandom'], { stdio: ['ignore', openSync(file, 'w'), 'inherit'] });
  const tag = JSON.parse((await must(['--json', 'image', 'build'])).stdout).tag as string;
  cpSync(join(ROOT, 'module', 'm5op', 'm5op.c'), join(work, 'm5op.c'));
  if (spawnSync('docker', ['run', '--rm', '-v', `${work}:/w`, tag, 'aarch64-linux-gnu-gcc', '-static', '-O2', '-o', '/w/m5op', '/w/m5op.c'], { stdio: 'inherit' }).status !== 0) throw new Error('m5op did not build');
  await m5dev(['destroy', '--name', NAME]);
  await must(['up', '--name', NAME, '--kernel', kernel, '--image-url', image.url, '--image-sha256', image.sha256, '--disk', 'overlay', '--ssh-port', String(PORT), '--share', `${work}:/opt/bench`, '--m5ops-readfile', file]);
  await must(['module', 'load', '--name', NAME]);
  await must(['exec', '--name', NAME, '--', 'cp /opt/bench/m5op ~/m5op']);
  await settled();
  const rt = await sample(RUNS, async () => Number((await must(['exec', '--name', NAME, '--', './m5op bench 20000'])).stdout.trim()) / 1e6);
  const py = 'python3 -c "import os,time; t=time.perf_counter_ns(); [os.getppid() for _ in range(20000)]; print((time.perf_counter_ns()-t)/20000/1e6)"';
  const getpid = await sample(RUNS, async () => Number((await must(['exec', '--name', NAME, '--', py])).stdout.trim()));
  record('m5ops', 'sum round trip (m5op bench 20000, per call)', rt, { label: 'a getppid() syscall from python, per call', ms: getpid });
  const viaM5 = await sample(RUNS, async () => (await must(['exec', '--name', NAME, '--', './m5op readfile | wc -c'])).ms);
  const viaShare = await sample(RUNS, async () => (await must(['exec', '--name', NAME, '--', 'sync; echo 3 | sudo tee /proc/sys/vm/drop_caches >/dev/null; cat /opt/bench/data.bin | wc -c'])).ms);
  const viaSsh = await sample(RUNS, async () => (await must(['exec', '--name', NAME, '--', 'cat | wc -c'], {}, file)).ms);
  const mibs = (ms: number) => `${(20 / (ms / 1000)).toFixed(1)} MiB/s`;
  record('m5ops', `read 20 MiB with m5 readfile (${mibs(viaM5)}; m5dev exec wall time)`, viaM5, { label: `cat from the 9p share, cold (${mibs(viaShare)})`, ms: viaShare });
  record('m5ops', `read 20 MiB with m5 readfile (${mibs(viaM5)})`, viaM5, { label: `streamed in over SSH (${mibs(viaSsh)})`, ms: viaSsh });
  rmSync(work, { recursive: true, force: true });
}

/** Group J: the TCG code cache, m5dev's default against QEMU's own (1 GiB). */
async function tcgCache(image: { url: string; sha256: string }, kernel: string): Promise<void> {
  const debs = spawnSync('bash', [join(ROOT, 'scripts', 'guest-cc-debs.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).stdout.trim();
  const work = mkdtempSync(join(tmpdir(), 'm5dev-bench-cache-'));
  cpSync(join(ROOT, 'module'), work, { recursive: true });
  spawnSync('chown', ['-R', '1000:1000', work]);
  const of: Record<number, { boot: number; idle: number; build: number; afterBuild: number }> = {};
  for (const mib of [DEFAULTS.tcgCacheMiB, 1024]) {
    const name = `cache-${mib}`;
    const cache = ['--tcg-cache', String(mib)];
    await m5dev(['destroy', '--name', name]);
    const first = await must(['--json', 'up', '--name', name, '--disk', 'overlay', '--image-url', image.url, '--image-sha256', image.sha256, ...cache]);
    await must(['exec', '--name', name, '--', 'sudo systemctl is-system-running --wait >/dev/null || true']);
    await new Promise((res) => setTimeout(res, 20_000));
    const idle = containerMiB((JSON.parse(first.stdout) as { container: string }).container);
    await must(['down', '--name', name]);
    const direct = await must(['--json', 'up', '--name', name, '--kernel', kernel, '--share', `${work}:m5`, '--share', `${debs}:/opt/debs`, ...cache]);
    await must(['exec', '--name', name, '--', readFileSync(join(ROOT, 'scripts', 'guest-cc-install.sh'), 'utf8')]);
    await must(['exec', '--name', name, '--', 'sudo systemctl is-system-running --wait >/dev/null || true']);
    const build = await sample(RUNS, () => inGuestMs('cd ~/m5 && make clean && make', name));
    const afterBuild = containerMiB((JSON.parse(direct.stdout) as { container: string }).container);
    of[mib] = { boot: first.ms, idle, build, afterBuild };
    await must(['destroy', '--name', name]);
  }
  rmSync(work, { recursive: true, force: true });
  const [mine, qemu] = [of[DEFAULTS.tcgCacheMiB]!, of[1024]!];
  const vs = (ms: number) => ({ label: "--tcg-cache 1024 (QEMU's default)", ms });
  record('tcg cache', `first boot (UEFI) → SSH, --tcg-cache ${DEFAULTS.tcgCacheMiB} (1 run)`, mine.boot, vs(qemu.boot));
  record('tcg cache', 'host memory of the VM container, idle after first boot (1 run)', mine.idle, vs(qemu.idle), 'MiB');
  record('tcg cache', 'in-guest make of m5 (gcc under TCG), direct-boot guest', mine.build, vs(qemu.build));
  record('tcg cache', 'host memory of the VM container after the in-guest builds (1 run)', mine.afterBuild, vs(qemu.afterBuild), 'MiB');
}

/** Memory the engine accounts to a container (docker stats), in MiB. */
function containerMiB(id: string): number {
  const out = spawnSync('docker', ['stats', '--no-stream', '--format', '{{.MemUsage}}', id], { encoding: 'utf8' }).stdout.trim();
  const m = /^([\d.]+)\s*([KMG]i?B)/.exec(out);
  if (!m) throw new Error(`docker stats: ${out}`);
  return Number(m[1]) * ({ KiB: 1 / 1024, MiB: 1, GiB: 1024 } as Record<string, number>)[m[2]!]!;
}

async function sideBySide(image: { url: string; sha256: string }): Promise<void> {
  let one: number | undefined;
  for (const n of [1, 2, 4]) {
    const names = Array.from({ length: n }, (_, i) => `side-${i + 1}`);
    for (const name of names) await m5dev(['destroy', '--name', name]); // a previous run's, if any
    const r = await must(['--json', 'up', ...names.flatMap((x) => ['--name', x]), '--disk', 'overlay', '--image-url', image.url, '--image-sha256', image.sha256]);
    const ups = (n === 1 ? [JSON.parse(r.stdout)] : JSON.parse(r.stdout)) as { name: string; container: string; bootSeconds: number }[];
    one ??= r.ms;
    record('side by side', `${n} guest${n > 1 ? 's' : ''}: m5dev up of all → every one answers SSH`, r.ms, n > 1 ? { label: '1 guest', ms: one } : undefined);
    for (const name of names) await m5dev(['exec', '--name', name, '--', 'sudo systemctl is-system-running --wait >/dev/null']);
    if (n === 1) {
      const why = await must(['exec', '--name', names[0]!, '--', 'sudo systemd-analyze 2>&1; sudo systemd-analyze critical-chain --no-pager 2>&1 | head -24; sudo systemd-analyze blame --no-pager 2>&1 | head -15']);
      process.stderr.write(`bench: first boot, systemd-analyze in the guest:\n${why.stdout}\n`);
    }
    await new Promise((res) => setTimeout(res, 20_000));
    const mem = ups.map((u) => containerMiB(u.container));
    record('side by side', `${n} guest${n > 1 ? 's' : ''}: host memory per guest, idle (VM container: QEMU + touched guest RAM)`, mem.reduce((a, b) => a + b, 0) / n, undefined, 'MiB');
    for (const name of names) await must(['destroy', '--name', name]);
  }
}

/** Time from `m5dev up` to its first successful SSH command (up returns right then). */
async function upToShell(extra: string[]): Promise<number> {
  await must(['down', '--name', NAME]);
  const r = await must(['up', '--name', NAME, '--ssh-port', String(PORT), ...extra]);
  return r.ms;
}

/**
 * A guest a developer works in has finished booting: wait for systemd's boot jobs (cloud-init's
 * last stages, timers) and a quiet moment, so the no-op and resume rows do not measure them.
 */
async function settled(extraEnv: NodeJS.ProcessEnv = {}): Promise<void> {
  await m5dev(['exec', '--name', NAME, '--', 'sudo systemctl is-system-running --wait >/dev/null'], extraEnv);
  await new Promise((r) => setTimeout(r, 20_000));
}

/**
 * `exec true` on a reused SSH connection (median of 10), recorded against what it is made of, measured
 * right after it: Node's own start, and plain ssh through the same shared connection without m5dev.
 */
async function execTrue(guest: string): Promise<number> {
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
function plainSshArgs(): string[] {
  const control = hostControlPath(join(HOME, 'instances', NAME), privateControlDir());
  return ['-F', '/dev/null', '-o', `ControlPath=${control}`, '-o', 'ControlMaster=no', '-o', 'BatchMode=yes', '-p', String(PORT), 'ubuntu@127.0.0.1', 'true'];
}

/** Median of 10 plain `ssh true` through m5dev's shared connection (no m5dev process). */
async function plainSshTrue(): Promise<number> {
  await must(['exec', '--name', NAME, '--', 'true']); // opens the shared connection
  return sample(10, async () => timed('ssh', plainSshArgs()));
}

/** Median resume and suspend times over RUNS suspend → up cycles of the running guest. */
async function suspendResume(extraEnv: NodeJS.ProcessEnv = {}): Promise<{ resume: number; suspend: number }> {
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
async function writtenWhileIdle(): Promise<number | undefined> {
  const written = () => Number(/^nr_written (\d+)$/m.exec(readFileSync('/proc/vmstat', 'utf8'))?.[1]);
  if (!existsSync('/proc/vmstat')) return undefined;
  const before = written();
  await new Promise((r) => setTimeout(r, 30_000));
  return ((written() - before) * 4096) / 2 ** 20;
}

/** The manual recipe's QEMU command (-smp 8, 2 GiB, UEFI flash, hostfwd) in the same image, on the same disk. */
async function manualToShell(): Promise<number> {
  await must(['down', '--name', NAME]);
  const inst = join(HOME, 'instances', NAME);
  const tag = JSON.parse((await must(['--json', 'image', 'build'])).stdout).tag as string;
  const disk = existsSync(join(inst, 'disk.qcow2')) ? 'disk.qcow2' : 'disk.raw';
  const qemu = [
    'qemu-system-aarch64', '-m', '2048', '-cpu', 'cortex-a57', '-M', 'virt', '-smp', '8', '-nographic',
    '-drive', 'if=pflash,format=raw,file=/instance/flash0.img,readonly=on', '-drive', 'if=pflash,format=raw,file=/instance/flash1.img',
    '-drive', `if=none,file=/instance/${disk},id=hd0`, '-device', 'virtio-blk-device,drive=hd0',
    '-drive', 'if=none,id=cloud,file=/instance/seed.img', '-device', 'virtio-blk-device,drive=cloud',
    '-netdev', 'user,id=user0,hostfwd=tcp::22022-:22', '-device', 'virtio-net-device,netdev=user0',
  ];
  const name = `m5dev-bench-manual-${process.pid}`;
  const t0 = performance.now();
  docker(['run', '-d', '--rm', '--name', name, '-l', 'dev.m5dev.bench=true', '-p', `127.0.0.1:${PORT}:22022`, '-v', `${inst}:/instance`, '-v', `${join(HOME, 'blobs', 'sha256')}:/cache:ro`, tag, ...qemu]);
  try {
    const ssh = ['-p', String(PORT), '-i', join(inst, 'id_ed25519'), '-o', `UserKnownHostsFile=${join(inst, 'known_hosts')}`, '-o', `HostKeyAlias=m5dev-${NAME}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', 'ubuntu@127.0.0.1', 'true'];
    for (;;) {
      if (spawnSync('ssh', ssh, { stdio: 'ignore', timeout: 30_000 }).status === 0) return performance.now() - t0;
      if (performance.now() - t0 > 900_000) throw new Error('the manual command did not reach SSH in 15 min');
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    spawnSync('docker', ['rm', '-f', name], { stdio: 'ignore' });
  }
}

/** Kernel files compiled by both sides: large, typical translation units of the built kernel. */
const COMPILE_SAMPLE = ['kernel/fork.c', 'mm/page_alloc.c', 'fs/namei.c'];

/**
 * In the toolchain container, from the built kernel tree (argv: the source tree, then the sample
 * files, run in the build tree): each sample file preprocessed to <n>.i and
 * its compile flags (from kbuild's .<file>.o.cmd, dependency output and -c/-o removed) to <n>.flags.
 * `time` prints seconds per compile; each side sums them.
 */
const PREPARE = [
  'set -euo pipefail',
  'n=0',
  'src=$1; shift',
  'for f in "$@"; do',
  '  n=$((n+1)); d=$(dirname "$f"); b=$(basename "$f" .c)',
  '  cmd=$(sed -n "s/^cmd_[^ ]* := //p" "$d/.$b.o.cmd" | head -1)',
  "  cmd=$(sed -E 's/ -Wp,-MMD,[^ ]+//; s/ -c -o [^ ]+ [^ ]+ *$//' <<<\"$cmd\")",
  '  eval "$cmd -E -o /work/$n.i $src/$f"',
  "  printf '%s\\n' \"${cmd#* }\" > /work/$n.flags",
  'done',
].join('\n');
const COMPILE = (cc: string) =>
  `cd "$1"; TIMEFORMAT=%R; for f in *.i; do time eval "${cc} $(cat "$(basename "$f" .i).flags") -c -o /tmp/m5dev-bench.o $f"; done 2>&1`;
const sumSeconds = (out: string) => out.split('\n').filter((l) => /^\d+\.\d+$/.test(l.trim())).reduce((a, l) => a + Number(l) * 1000, 0);

function docker(args: string[]): string {
  const r = spawnSync('docker', args, { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  if (r.status !== 0) throw new Error(`docker ${args.slice(0, 2).join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

async function compileInContainerAndGuest(kernel: string): Promise<void> {
  // The kernel cache as every tool container mounts it (kbuild's command lines name those paths).
  const rec = JSON.parse(readFileSync(join(HOME, 'kernels', `${kernel}.latest.json`), 'utf8')) as { build: string; src: string; toolchainTag: string };
  const work = mkdtempSync(join(tmpdir(), 'm5dev-bench-cc-'));
  try {
    const tag = rec.toolchainTag;
    docker(['run', '--rm', '-l', 'dev.m5dev.bench=true', '-v', `${join(HOME, 'kernels')}:/kernels:ro`, '-v', `${work}:/work`, '-w', `/kernels/${rec.build}`, tag, 'bash', '-c', PREPARE, 'prepare', `/kernels/${rec.src}`, ...COMPILE_SAMPLE]);
    const container = await sample(RUNS, async () => sumSeconds(docker(['run', '--rm', '-l', 'dev.m5dev.bench=true', '-v', `${work}:/work:ro`, tag, 'bash', '-c', COMPILE('aarch64-linux-gnu-gcc'), 'compile', '/work'])));
    // The guest: gcc 12 in an arm64 Debian root (scripts/guest-cc-rootfs.sh), used through chroot.
    const cc = spawnSync('bash', [join(ROOT, 'scripts', 'guest-cc-rootfs.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (cc.status !== 0) throw new Error('scripts/guest-cc-rootfs.sh failed');
    const root = '/opt/m5dev-cc';
    await must(['exec', '--name', NAME, '--', `sudo mkdir -p ${root} && sudo tar -x -C ${root}`], {}, cc.stdout.trim());
    const files = join(work, 'files.tar');
    spawnSync('tar', ['-c', '-f', files, '-C', work, ...readdirSync(work).filter((f) => /\.(i|flags)$/.test(f))]);
    await must(['exec', '--name', NAME, '--', `sudo mkdir -p ${root}/work && sudo tar -x -C ${root}/work`], {}, files);
    // ssh joins the remote words with spaces: hand it one quoted command line.
    const quoted = `'${COMPILE('gcc-12').replace(/'/g, `'\\''`)}'`;
    const guestRun = await must(['exec', '--name', NAME, '--', `sudo chroot ${root} bash -c ${quoted} compile /work`]);
    const guest = sumSeconds(guestRun.stdout);
    if (guest === 0 || container === 0) throw new Error(`no compile times: ${guestRun.stdout.slice(-500)}`);
    record('kernel compile', `${COMPILE_SAMPLE.length} kernel files (gcc 12 -O2) in the guest under TCG (1 run)`, guest, { label: 'toolchain container, cross gcc 12', ms: container });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

interface SideFigures {
  first: number;
  boot: number;
  resume: number;
  exec: number;
  /** Module edit → rebuilt → loaded, when a kernel is built. */
  edit?: number;
}

/**
 * Group F, one side: the same steps against the engine of `side` (the same m5dev home: the remote
 * engine's kernel build is this machine's, copied in by `kernel build`).
 */
async function engineSide(image: { url: string; sha256: string }, side: NodeJS.ProcessEnv, kernel: string | undefined): Promise<SideFigures> {
  await must(['destroy', '--name', NAME], side).catch(() => undefined);
  const first = (await must(['up', '--name', NAME, '--image-url', image.url, '--image-sha256', image.sha256, '--ssh-port', String(PORT)], side)).ms;
  const boot = await sample(RUNS, async () => {
    await must(['down', '--name', NAME], side);
    return (await must(['up', '--name', NAME, '--ssh-port', String(PORT)], side)).ms;
  });
  await settled(side);
  await must(['exec', '--name', NAME, '--', 'true'], side);
  const exec = await sample(10, async () => (await must(['exec', '--name', NAME, '--', 'true'], side)).ms);
  const { resume } = await suspendResume(side);
  let edit: number | undefined;
  if (kernel) {
    // The tarball is in the home's blob store already, so no URL is fetched.
    const rec = JSON.parse(readFileSync(join(HOME, 'kernels', `${kernel}.latest.json`), 'utf8')) as { src: string };
    await must(['kernel', 'build', '--version', kernel, '--kernel-url', 'file:///nonexistent', '--kernel-sha256', rec.src.split('/').pop()!], side);
    await must(['down', '--name', NAME], side);
    await must(['up', '--name', NAME, '--kernel', kernel, '--ssh-port', String(PORT)], side);
    const src = mkdtempSync(join(tmpdir(), 'm5dev-bench-module-'));
    cpSync(join(ROOT, 'module'), src, { recursive: true });
    await must(['module', 'load', '--name', NAME, '--src', src], side);
    let n = 0;
    edit = await sample(RUNS, async () => {
      writeFileSync(join(src, 'm5.c'), `${readFileSync(join(src, 'm5.c'), 'utf8')}\n/* edit ${++n} ${Date.now()} */\n`);
      return (await must(['module', 'load', '--name', NAME, '--src', src], side)).ms;
    });
    rmSync(src, { recursive: true, force: true });
  }
  await must(['destroy', '--name', NAME], side);
  return { first, boot, resume, exec, edit };
}

async function remoteBesideLocal(image: { url: string; sha256: string }, kernel: string | undefined): Promise<void> {
  const tag = JSON.parse((await must(['--json', 'image', 'build'])).stdout).tag as string;
  const start = spawnSync('bash', [join(ROOT, 'scripts', 'engines', 'remote-engine.sh'), 'start', tag], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (start.status !== 0) throw new Error('scripts/engines/remote-engine.sh failed');
  const local = await engineSide(image, {}, kernel);
  const remote = await engineSide(image, { DOCKER_HOST: start.stdout.trim() }, kernel);
  const vs = (ms: number) => ({ label: 'local engine', ms });
  record('remote engine', 'first up → SSH (artefacts made; on the remote, the cloud image copied in and verified there)', remote.first, vs(local.first));
  record('remote engine', 'up → SSH, instance stopped (raw disk, UEFI)', remote.boot, vs(local.boot));
  record('remote engine', 'up → SSH, resuming a suspended guest', remote.resume, vs(local.resume));
  record('remote engine', 'exec true, reused SSH connection (remote: through the Engine API relay)', remote.exec, vs(local.exec));
  if (remote.edit !== undefined && local.edit !== undefined) record('remote engine', 'module edit → rebuilt → loaded (direct-boot guest)', remote.edit, vs(local.edit));
}

/** Group G: alternate this CLI and the base one on the same running guest; medians of each. */
async function againstBase(base: string): Promise<void> {
  const pair = async (what: string, runs: number, args: (cli: string) => string[]) => {
    const mine: number[] = [];
    const theirs: number[] = [];
    for (let i = 0; i < runs; i++) {
      mine.push((await must(args(CLI), {}, undefined, CLI)).ms);
      theirs.push((await must(args(base), {}, undefined, base)).ms);
    }
    record('local engine vs before', what, median(mine), { label: 'before the engine seam', ms: median(theirs) });
  };
  await upToShell([]);
  await settled();
  await must(['exec', '--name', NAME, '--', 'true']);
  await pair('exec true, reused SSH connection', 10, () => ['exec', '--name', NAME, '--', 'true']);
  await pair('status', 5, () => ['status']);
  await pair('up of a running instance', 5, () => ['up', '--name', NAME, '--ssh-port', String(PORT)]);
  const mine: number[] = [];
  const theirs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    for (const [cli, into] of [[CLI, mine], [base, theirs]] as const) {
      await must(['suspend', '--name', NAME], {}, undefined, cli);
      into.push((await must(['up', '--name', NAME, '--ssh-port', String(PORT)], {}, undefined, cli)).ms);
    }
  }
  record('local engine vs before', 'up → SSH, resuming a suspended guest', median(mine), { label: 'before the engine seam', ms: median(theirs) });
}

async function main(): Promise<void> {
  const image = fixtureImage();
  const kernel = builtKernel();
  process.stderr.write(`bench: ${RUNS} runs each, home ${HOME}, kernel ${kernel ?? '(none built: direct-boot rows skipped)'}\n`);
  await must(['destroy', '--name', NAME]).catch(() => undefined);
  await must(['up', '--name', NAME, '--image-url', image.url, '--image-sha256', image.sha256, '--disk', 'overlay', '--ssh-port', String(PORT)]);

  // A. time to a shell
  let uefi: number | undefined;
  if (want('A')) {
    const manual = await sample(RUNS, manualToShell);
    uefi = await sample(RUNS, () => upToShell([]));
    record('time to a shell', 'm5dev up → SSH (UEFI + GRUB, cortex-a57, 2 vCPU)', uefi, { label: 'manual recipe command (-smp 8)', ms: manual });
    if (kernel) {
      const direct = await sample(RUNS, () => upToShell(['--kernel', kernel]));
      record('time to a shell', `m5dev up --kernel ${kernel} → SSH (direct boot)`, direct, { label: 'UEFI + GRUB', ms: uefi });
    }
    const max = await sample(1, () => upToShell(['--cpu', 'max,pauth-impdef=on']));
    record('time to a shell', 'm5dev up --cpu max,pauth-impdef=on → SSH (1 run)', max, { label: 'cortex-a57', ms: uefi });
  }

  // B. no-op overheads (guest up, UEFI kernel)
  if (want('B')) {
    await upToShell([]);
    await settled();
    const image2 = await sample(5, async () => (await must(['image', 'build'])).ms);
    record('no-op overhead', 'image build, cached', image2);
    const status = await sample(5, async () => (await must(['status'])).ms);
    record('no-op overhead', 'status', status);
    const execFresh = await sample(5, async () => (await must(['exec', '--name', NAME, '--', 'true'], { M5DEV_SSH_REUSE: 'no' })).ms);
    const execReuse = await execTrue('UEFI guest');
    record('no-op overhead', 'exec true, UEFI guest', execReuse, { label: 'new connection each time', ms: execFresh });
  }

  // C. module edit → rebuilt → loaded
  if (kernel && want('C')) {
    await upToShell(['--kernel', kernel]);
    const src = mkdtempSync(join(tmpdir(), 'm5dev-bench-module-'));
    cpSync(join(ROOT, 'module'), src, { recursive: true });
    await must(['module', 'load', '--name', NAME, '--src', src]);
    await settled();
    await execTrue('direct-boot guest');
    let n = 0;
    const edit = await sample(RUNS, async () => {
      writeFileSync(join(src, 'm5.c'), `${readFileSync(join(src, 'm5.c'), 'utf8')}\n/* edit ${++n} ${Date.now()} */\n`);
      return (await must(['module', 'load', '--name', NAME, '--src', src])).ms;
    });
    const cached = await sample(RUNS, async () => (await must(['module', 'load', '--name', NAME, '--src', src])).ms);
    record('module loop', 'edit m5.c → rebuilt → loaded in the guest', edit, { label: 'reload unchanged (build cached)', ms: cached });
    // With BENCH_BASE_CLI: the same edit → load loop, alternating this checkout and the base.
    if (process.env.BENCH_BASE_CLI) {
      const base = resolve(process.env.BENCH_BASE_CLI);
      const mine: number[] = [];
      const theirs: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        for (const [cli, into] of [[CLI, mine], [base, theirs]] as const) {
          writeFileSync(join(src, 'm5.c'), `${readFileSync(join(src, 'm5.c'), 'utf8')}\n/* edit ${++n} ${Date.now()} */\n`);
          into.push((await must(['module', 'load', '--name', NAME, '--src', src], {}, undefined, cli)).ms);
        }
      }
      record('module loop', 'edit m5.c → rebuilt → loaded in the guest', median(mine), { label: 'base (BENCH_BASE_CLI)', ms: median(theirs) });
    }
    rmSync(src, { recursive: true, force: true });
  }

  // D. suspend / resume (UEFI guest that has been up for a while, as a developer's would be), with
  // the guest's RAM a file in the container's tmpfs (default) and as ordinary memory saved into the
  // stream (--no-ram-file); and what each costs while the guest runs: host disk writes while it
  // idles, and how fast it answers.
  if (want('D')) {
    const cold = await upToShell(['--no-ram-file']);
    await settled();
    const anonWrites = await writtenWhileIdle();
    const anonSsh = await plainSshTrue();
    const stream = await suspendResume();
    await upToShell(['--ram-file']);
    await settled();
    const fileWrites = await writtenWhileIdle();
    const fileSsh = await plainSshTrue();
    const file = await suspendResume();
    record('time to a shell', 'm5dev up → SSH, resuming a suspended guest (default: RAM file in the container tmpfs)', file.resume, { label: 'cold boot (UEFI + GRUB)', ms: uefi ?? cold });
    record('time to a shell', 'm5dev up → SSH, resuming, --no-ram-file (RAM in the saved stream)', stream.resume, { label: 'default', ms: file.resume });
    record('time to a shell', 'm5dev suspend (devices saved, RAM file copied out, stop)', file.suspend);
    record('time to a shell', 'm5dev suspend, --no-ram-file (RAM + devices saved, stop)', stream.suspend, { label: 'default', ms: file.suspend });
    if (fileWrites !== undefined && anonWrites !== undefined) {
      record('running cost', 'host disk writes while the guest idles 30 s (1 sample), default', fileWrites, { label: '--no-ram-file', ms: anonWrites }, 'MiB');
    }
    record('running cost', 'plain ssh true on the shared connection (no m5dev), default', fileSsh, { label: '--no-ram-file', ms: anonSsh });
  }

  // E. compiling kernel files in the container vs in the guest
  if (kernel && want('E')) {
    await must(['up', '--name', NAME, '--ssh-port', String(PORT)]);
    await compileInContainerAndGuest(kernel);
  }
  // H. the guest workflow: shares and in-guest builds
  if (kernel && want('H')) await guestWorkflow(kernel);
  if (kernel && want('H') && process.env.BENCH_BASE_CLI) await shareModes(kernel, resolve(process.env.BENCH_BASE_CLI));
  await m5dev(['destroy', '--name', NAME]); // gone already when only H ran with a base

  // K. m5ops
  if (kernel && want('K')) await m5ops(image, kernel);
  await must(['destroy', '--name', NAME]);

  // I. N guests side by side
  if (want('I')) await sideBySide(image);

  // J. the TCG code cache
  if (kernel && want('J')) await tcgCache(image, kernel);

  // F. a remote engine beside the local one
  if (want('F')) await remoteBesideLocal(image, kernel);

  // G. this checkout against an older m5dev on the local engine
  if (want('G') && process.env.BENCH_BASE_CLI) {
    await must(['up', '--name', NAME, '--image-url', image.url, '--image-sha256', image.sha256, '--disk', 'overlay', '--ssh-port', String(PORT)]);
    await againstBase(resolve(process.env.BENCH_BASE_CLI));
    await must(['destroy', '--name', NAME]);
  }

  const lines = [
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; guest under TCG.`,
    `Medians of ${RUNS} runs unless noted; ratio = first column ÷ comparison.`,
    '',
    '| group | measurement | median | compared with | median | ratio |',
    '|---|---|---:|---|---:|---:|',
    ...rows.map((r) => `| ${r.group} | ${r.what} | ${show(r.ms, r.unit)} | ${r.vs?.label ?? ''} | ${r.vs ? show(r.vs.ms, r.unit) : ''} | ${r.vs && r.vs.ms > 0 ? `${(r.ms / r.vs.ms).toFixed(2)}×` : ''} |`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${(e as Error).message}\n`);
  spawnSync('sh', ['-c', 'docker rm -f $(docker ps -aq --filter label=dev.m5dev.bench=true) 2>/dev/null'], { stdio: 'ignore' });
  process.exit(1);
});
