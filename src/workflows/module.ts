/**
 * The module loop: build the module (and its user-space test) in the toolchain container against
 * the cached kernel tree, copy it into the running guest, insmod, and run the test there.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { toolchainIdentity, type Toolchain } from './image-build.js';
import { openToolStores, type ToolStores } from './kernel-build.js';
import type { Reporter, Step } from './report.js';
import type { HomeLayout } from '../paths.js';
import { hashFiles, listContext } from '../docker/build-context.js';
import { ModuleError, UsageError } from '../errors.js';
import { publishDir } from '../staging.js';
import { KERNELS_MOUNT, inContainer, moduleBuildDir, requireKernel, type KernelRecord } from '../kernel/cache.js';
import { containerEnv, makeArgs } from '../kernel/build-spec.js';
import { builtFor, moduleSources, parseTap, tapPassed, vermagicOf, type TapSummary } from '../module/artifacts.js';
import type { FedCommand, GuestSsh } from '../ssh/client.js';
import { guestArgv, guestScript, type GuestCommand } from '../ssh/guest-command.js';
import { scriptCommand } from '../scripts.js';

const MOD_MOUNT = '/mod';
/** The user-space test program, if the module tree has one. */
export const TEST_SOURCE = join('test', 'm5_test.c');
const TEST_BINARY = 'm5-test';
const RECORD = 'm5dev-module.json';

export interface ModuleBuild {
  dir: string;
  modules: string[];
  test?: string;
  vermagic: string;
  release: string;
}

/** What to build: the module tree, against which built kernel, loaded with which parameters. */
export interface ModuleRequest {
  home: HomeLayout;
  /** The kernel version to build against (its build on the engine is found by the Kernel tree step). */
  version: string;
  srcDir: string;
  params: string[];
}

export function moduleRequest(home: HomeLayout, version: string, srcDir: string, params: string[] = []): ModuleRequest {
  if (!existsSync(join(srcDir, 'Makefile')) && !existsSync(join(srcDir, 'Kbuild'))) {
    throw new UsageError(`${srcDir} has no Makefile or Kbuild`, 'Point --src at a module directory (obj-m := ...).');
  }
  return { home, version, srcDir, params };
}

/** The module built (or found built) for a kernel. */
export interface ModuleBuilt {
  build: ModuleBuild;
  cached: boolean;
  kernel: KernelRecord;
}

/** What loading did in the guest: insmod's words, and the device nodes and parameters it added. */
export interface ModuleLoaded {
  built: ModuleBuilt;
  log: string;
  report: LoadReport;
}

/** The guest's TAP from the module's test, as it came (also when checks failed). */
export interface TapRun {
  text: string;
  exitCode: number;
  summary: TapSummary;
}

function readBuild(dir: string): ModuleBuild | undefined {
  const f = join(dir, RECORD);
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as ModuleBuild) : undefined;
}

/**
 * Build the module against the kernel build of `req.version`. `beside`: work to start once the
 * kernel is known and to run during the build (the guest's side of a load); it is told of a
 * failed build (`undefined`).
 */
export async function buildModule(report: Reporter, toolchain: Toolchain, req: ModuleRequest, beside?: (release: string) => { failed(): void }): Promise<ModuleBuilt> {
  const ts = await openToolStores(report, toolchain, req.home);
  const kernel = await report.step('Kernel tree', async (s) => {
    const k = await requireKernel(ts.stores.kernels, req.version);
    s.title(`Kernel tree ${k.release} (${k.key})`);
    return k;
  });
  return report.step('Build the module', async (s) => {
    // The guest's side of the load (SSH, sudo, the release check) starts now and waits for the build.
    const started = beside?.(kernel.release);
    try {
      return await compileModule(ts, req, kernel, s);
    } catch (e) {
      started?.failed();
      throw e;
    }
  });
}

async function compileModule(ts: ToolStores, req: ModuleRequest, kernel: KernelRecord, s: Step): Promise<ModuleBuilt> {
  const { toolchain } = ts;
  const sources = moduleSources(listContext(req.srcDir));
  const compiler = await toolchain.engine.toolchainCompiler(toolchain.tag, toolchain.imageId, req.home.root);
  const dir = moduleBuildDir(req.home, kernel.key, hashFiles(req.srcDir, sources, { toolchain: toolchainIdentity(toolchain), compiler }));
  const cached = readBuild(dir);
  if (cached) {
    s.skip(`cached: these sources are already built for ${cached.release}`);
    return { build: cached, cached: true, kernel };
  }
  const build = await publishDir(dir, 'partial module build', async (partial) => {
    const hasTest = sources.includes(TEST_SOURCE);
    const paths = { src: inContainer(kernel.src), build: inContainer(kernel.build) };
    // sh/tool/module-build.sh: kbuild, and the test program beside it when there is one; run in `mod`.
    const buildCmd = (mod: string) => scriptCommand('moduleBuild', [mod, hasTest ? TEST_SOURCE : '', TEST_BINARY, ...makeArgs(paths, ['modules'], { extra: [`M=${mod}`] })]);
    const files = (mod: string) => sources.map((rel) => ({ name: `${mod}/${rel}`, data: readFileSync(join(req.srcDir, rel)) }));
    const failure = (message: string, out: string) => new ModuleError(message, out, 'Fix the compile error above and run the command again.');
    // Sources in and results out as tar streams: the engine needs to see nothing of this machine.
    // The tree may hold what the guest wrote (a share): its Kbuild runs in a container of its own,
    // never beside QEMU, as the invoking user, with no capability, network or share, and only
    // plain files come back (ToolRun.confined, ContainerFiles.getTree).
    const user = buildUser();
    await toolchain.engine.runTool({
      image: toolchain.tag,
      cmd: buildCmd(MOD_MOUNT),
      binds: [ts.stores.kernels.bind(KERNELS_MOUNT, true)],
      env: containerEnv(),
      home: req.home.root,
      description: 'Building the module',
      confined: user,
      before: (box) => box.putFiles('/', files(MOD_MOUNT.slice(1)), user),
      after: (box) => box.getTree(MOD_MOUNT, partial),
      onLine: (l) => s.output(l),
      failure,
    });
    const modules = readdirSync(partial).filter((f) => f.endsWith('.ko')).sort();
    if (modules.length === 0) throw new ModuleError('the build produced no .ko', '', 'Check obj-m in the module Makefile.');
    const first = modules[0];
    if (first === undefined) throw new ModuleError('the build produced no .ko', '', 'Check obj-m in the module Makefile.');
    const vermagic = vermagicOf(readFileSync(join(partial, first))) ?? '';
    if (!builtFor(vermagic, kernel.release)) {
      throw new ModuleError(
        `${modules[0]} has vermagic "${vermagic}", not kernel ${kernel.release}`,
        '',
        'The kernel would refuse it. Check that the module does not set its own vermagic (MODULE_INFO); if it does not, the built kernel tree is not the one on record: `m5dev kernel build --rebuild`.',
      );
    }
    const made: ModuleBuild = { dir, modules, test: hasTest ? TEST_BINARY : undefined, vermagic, release: kernel.release };
    writeFileSync(join(partial, RECORD), `${JSON.stringify(made, null, 2)}\n`);
    return made;
  });
  s.title(`Built ${build.modules.join(', ')} for ${kernel.release}${build.test ? ` and ${TEST_BINARY}` : ''}`);
  return { build, cached: false, kernel };
}

/** Who a module build runs as: the invoking user (root's builds too: without a capability, and with nothing of the host's to reach). */
export function buildUser(): { uid: number; gid: number } {
  return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
}

async function guest(ssh: GuestSsh, cmd: GuestCommand): Promise<{ exitCode: number; output: string }> {
  const r = await ssh.capture(cmd, { timeoutMs: 120_000 });
  return { exitCode: r.exitCode, output: `${r.stdout}${r.stderr}` };
}

/** What sh/guest/module-load.sh prints and how it exits (named in its header). */
export const MODULE_LOAD = {
  /** The line between insmod's words and the report. */
  mark: '--- m5dev: what the module added ---',
  /** Before the running release, when it is not the module's. */
  releaseMark: 'm5dev: the guest runs ',
  exit: { wrongRelease: 97, noInput: 98 },
} as const;

export interface LoadReport {
  devices: string[];
  parameters: Record<string, string>;
}

/** Pure: the lines after LOAD_MARK ("device /dev/x", "parameter mod.name=value"). */
export function parseLoadReport(text: string): LoadReport {
  const report: LoadReport = { devices: [], parameters: {} };
  for (const line of text.split('\n')) {
    if (line.startsWith('device ')) report.devices.push(line.slice('device '.length).trim());
    const p = /^parameter ([^=]+)=(.*)$/.exec(line);
    if (p) report.parameters[p[1] ?? ''] = p[2] ?? '';
  }
  return report;
}

function moduleName(ko: string): string {
  return basename(ko, '.ko').replace(/-/g, '_');
}

/** Build the module, its load into the guest starting beside the build, then copy it in and insmod it. */
export async function loadModule(report: Reporter, toolchain: Toolchain, req: ModuleRequest, ssh: GuestSsh): Promise<ModuleLoaded> {
  let load: FedCommand | undefined;
  const built = await buildModule(report, toolchain, req, (release) => {
    const started = (load = ssh.startFed(loadCommand(release, req.params), { timeoutMs: 120_000 }));
    return { failed: () => started.feed(undefined) };
  });
  return report.step('Copy and load the module', async (s) => {
    const b = built.build;
    const pending = load ?? ssh.startFed(loadCommand(b.release, req.params), { timeoutMs: 120_000 });
    // The input: a header line of `file.ko:module_name` pairs, then the modules as a tar.
    const header = `${b.modules.map((ko) => `${ko}:${moduleName(ko)}`).join(' ')}\n`;
    pending.feed(Buffer.concat([Buffer.from(header), await modulesTar(b)]));
    const r = await pending.result;
    const output = `${r.stdout}${r.stderr}`;
    const running = new RegExp(`^${MODULE_LOAD.releaseMark}(.*)$`, 'm').exec(output)?.[1];
    if (r.exitCode === MODULE_LOAD.exit.wrongRelease && running !== undefined) {
      throw new ModuleError(
        `the guest runs ${running}, the module is built for ${b.release}`,
        '',
        `A module loads only into the kernel it was built against: \`m5dev down\`, then \`m5dev up --kernel ${req.version}\`.`,
      );
    }
    const [log = '', added = ''] = output.split(`${MODULE_LOAD.mark}\n`);
    if (r.exitCode !== 0) throw new ModuleError(`copying or loading the module in the guest failed`, output);
    const loaded = parseLoadReport(added);
    const devices = loaded.devices.length ? `; ${loaded.devices.join(', ')}` : '';
    s.title(`Loaded ${b.modules.join(', ')} into ${b.release}${devices}`);
    return { built, log, report: loaded };
  });
}

/** The guest's side of `module load` (sh/guest/module-load.sh), as one command under one sudo. */
export function loadCommand(release: string, params: string[]): GuestCommand {
  return guestScript('moduleLoad', [release, ...params], { root: true });
}

/** The built modules as one tar, in memory (a few hundred KiB). */
async function modulesTar(b: ModuleBuild): Promise<Buffer> {
  const { pack } = await import('tar-fs');
  const chunks: Buffer[] = [];
  for await (const c of pack(b.dir, { entries: b.modules, map: (h) => ({ ...h, uid: 0, gid: 0, uname: 'root', gname: 'root' }) })) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * The module's user-space test in the guest (unprivileged), then a clean unload. `onTap` gets the
 * guest's TAP as it came, before a failed check fails the step (a report is wanted most then).
 */
export async function testModule(report: Reporter, ssh: GuestSsh, req: ModuleRequest, built: ModuleBuilt, onTap: (tap: TapRun) => void): Promise<TapRun> {
  const b = built.build;
  const tap = await report.step('Run the user-space test in the guest (unprivileged)', async (s) => {
    if (!b.test) throw new UsageError(`${req.srcDir} has no ${TEST_SOURCE}`, 'Add a test program there; it prints TAP and exits 0 on success.');
    const up = await ssh.upload(join(b.dir, b.test), `/tmp/${b.test}`, '0755');
    if (up.exitCode !== 0) throw new ModuleError('copying the test to the guest failed', `${up.stdout}${up.stderr}`);
    const r = await guest(ssh, guestArgv([`/tmp/${b.test}`]));
    const run: TapRun = { text: r.output, exitCode: r.exitCode, summary: parseTap(r.output) };
    onTap(run);
    if (r.exitCode !== 0 || !tapPassed(run.summary)) {
      throw new ModuleError(`${run.summary.failed.length || 'some'} check(s) failed in the guest (exit ${r.exitCode})`, r.output);
    }
    s.title(`Test passed: ${run.summary.passed}/${run.summary.planned} checks`);
    return run;
  });
  await report.step('Unload the module cleanly', async (s) => {
    const names = b.modules.map(moduleName);
    const r = await guest(ssh, guestScript('moduleUnload', names, { root: true }));
    if (r.exitCode !== 0) throw new ModuleError('unloading the module failed or the kernel complained', r.output);
    s.title(`Unloaded ${names.join(', ')}; no kernel warnings`);
  });
  return tap;
}
