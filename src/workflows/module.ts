/**
 * The module loop: build the module (and its user-space test) in the toolchain container against
 * the cached kernel tree, copy it into the running guest, insmod, and run the test there.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { ListrTask } from 'listr2';
import { homeStoresTask, imageTasks, newImageCtx, toolchainIdentity, type ImageCtx } from './image-build.js';
import type { HomeLayout } from '../paths.js';
import { hashFiles, listContext } from '../docker/build-context.js';
import { ModuleError, UsageError } from '../errors.js';
import { publishDir } from '../staging.js';
import { KERNELS_MOUNT, inContainer, moduleBuildDir, requireKernel, type KernelRecord } from '../kernel/cache.js';
import { containerEnv, makeArgs } from '../kernel/build-spec.js';
import type { HomeStores } from '../engine/instance-storage.js';
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

export interface ModuleCtx {
  image: ImageCtx;
  home: HomeLayout;
  /** The kernel version to build against, and its build on the engine (found by the Kernel tree step). */
  version: string;
  stores?: HomeStores;
  kernel?: KernelRecord;
  srcDir: string;
  params: string[];
  ssh?: GuestSsh;
  /** Load into the guest after the build: its side of the load starts with the build (startLoad). */
  loadAfterBuild?: boolean;
  pendingLoad?: FedCommand;
  build?: ModuleBuild;
  cached?: boolean;
  loadLog?: string;
  /** What loading added in the guest: device nodes, and sysfs parameters with their values. */
  loaded?: LoadReport;
  tap?: TapSummary;
  tapText?: string;
  /** The test program's exit code. */
  tapExit?: number;
}

export function newModuleCtx(home: HomeLayout, version: string, srcDir: string, baseImage: string, params: string[] = []): ModuleCtx {
  if (!existsSync(join(srcDir, 'Makefile')) && !existsSync(join(srcDir, 'Kbuild'))) {
    throw new UsageError(`${srcDir} has no Makefile or Kbuild`, 'Point --src at a module directory (obj-m := ...).');
  }
  return { image: newImageCtx(baseImage), home, version, srcDir, params };
}

function readBuild(dir: string): ModuleBuild | undefined {
  const f = join(dir, RECORD);
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as ModuleBuild) : undefined;
}

export function moduleBuildTasks(): ListrTask<ModuleCtx>[] {
  return [
    ...imageTasks<ModuleCtx>(),
    homeStoresTask<ModuleCtx>(),
    {
      title: 'Kernel tree',
      task: async (ctx, task) => {
        ctx.kernel = await requireKernel(ctx.stores!.kernels, ctx.version);
        task.title = `Kernel tree ${ctx.kernel.release} (${ctx.kernel.key})`;
      },
    },
    {
      title: 'Build the module',
      task: async (ctx, task) => {
        const kernel = ctx.kernel!;
        // The guest's side of the load (SSH, sudo, the release check) starts now and waits for the build.
        if (ctx.loadAfterBuild) ctx.pendingLoad = startLoad(ctx, kernel.release);
        try {
          await buildModule(ctx, task);
        } catch (e) {
          ctx.pendingLoad?.feed(undefined);
          throw e;
        }
      },
    },
  ];
}

async function buildModule(ctx: ModuleCtx, task: { skip: (m: string) => void; title: string; output: string }): Promise<void> {
  const kernel = ctx.kernel!;
  const sources = moduleSources(listContext(ctx.srcDir));
  const compiler = await ctx.image.toolchain!.engine.toolchainCompiler(ctx.image.toolchain!.tag, ctx.image.toolchain!.imageId, ctx.home.root);
  const dir = moduleBuildDir(ctx.home, kernel.key, hashFiles(ctx.srcDir, sources, { toolchain: toolchainIdentity(ctx.image.toolchain!), compiler }));
  const cached = readBuild(dir);
  if (cached) {
    ctx.build = cached;
    ctx.cached = true;
    task.skip(`cached: these sources are already built for ${cached.release}`);
    return;
  }
  ctx.build = await publishDir(dir, 'partial module build', async (partial) => {
    const hasTest = sources.includes(TEST_SOURCE);
    const paths = { src: inContainer(kernel.src), build: inContainer(kernel.build) };
    // sh/tool/module-build.sh: kbuild, and the test program beside it when there is one; run in `mod`.
    const buildCmd = (mod: string) => scriptCommand('moduleBuild', [mod, hasTest ? TEST_SOURCE : '', TEST_BINARY, ...makeArgs(paths, ['modules'], { extra: [`M=${mod}`] })]);
    const files = (mod: string) => sources.map((rel) => ({ name: `${mod}/${rel}`, data: readFileSync(join(ctx.srcDir, rel)) }));
    const failure = (message: string, out: string) => new ModuleError(message, out, 'Fix the compile error above and run the command again.');
    // Sources in and results out as tar streams: the engine needs to see nothing of this machine.
    // The tree may hold what the guest wrote (a share): its Kbuild runs in a container of its own,
    // never beside QEMU, as the invoking user, with no capability, network or share, and only
    // plain files come back (ToolRun.confined, ContainerFiles.getTree).
    const user = buildUser();
    await ctx.image.toolchain!.engine.runTool({
      image: ctx.image.toolchain!.tag,
      cmd: buildCmd(MOD_MOUNT),
      binds: [ctx.stores!.kernels.bind(KERNELS_MOUNT, true)],
      env: containerEnv(),
      home: ctx.home.root,
      description: 'Building the module',
      confined: user,
      before: (box) => box.putFiles('/', files(MOD_MOUNT.slice(1)), user),
      after: (box) => box.getTree(MOD_MOUNT, partial),
      onLine: (l) => {
        task.output = l;
      },
      failure,
    });
    const modules = readdirSync(partial).filter((f) => f.endsWith('.ko')).sort();
    if (modules.length === 0) throw new ModuleError('the build produced no .ko', '', 'Check obj-m in the module Makefile.');
    const vermagic = vermagicOf(readFileSync(join(partial, modules[0]!))) ?? '';
    if (!builtFor(vermagic, kernel.release)) {
      throw new ModuleError(
        `${modules[0]} has vermagic "${vermagic}", not kernel ${kernel.release}`,
        '',
        'The kernel would refuse it. Check that the module does not set its own vermagic (MODULE_INFO); if it does not, the built kernel tree is not the one on record: `m5dev kernel build --rebuild`.',
      );
    }
    const build: ModuleBuild = { dir, modules, test: hasTest ? TEST_BINARY : undefined, vermagic, release: kernel.release };
    writeFileSync(join(partial, RECORD), `${JSON.stringify(build, null, 2)}\n`);
    return build;
  });
  task.title = `Built ${ctx.build.modules.join(', ')} for ${kernel.release}${ctx.build.test ? ` and ${TEST_BINARY}` : ''}`;
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
    if (p) report.parameters[p[1]!] = p[2]!;
  }
  return report;
}

function moduleName(ko: string): string {
  return basename(ko, '.ko').replace(/-/g, '_');
}

export function moduleLoadTasks(): ListrTask<ModuleCtx>[] {
  return [
    {
      title: 'Copy and load the module',
      task: async (ctx, task) => {
        const b = ctx.build!;
        const load = ctx.pendingLoad ?? startLoad(ctx, b.release);
        // The input: a header line of `file.ko:module_name` pairs, then the modules as a tar.
        const header = `${b.modules.map((ko) => `${ko}:${moduleName(ko)}`).join(' ')}\n`;
        load.feed(Buffer.concat([Buffer.from(header), await modulesTar(b)]));
        const r = await load.result;
        const output = `${r.stdout}${r.stderr}`;
        const running = new RegExp(`^${MODULE_LOAD.releaseMark}(.*)$`, 'm').exec(output)?.[1];
        if (r.exitCode === MODULE_LOAD.exit.wrongRelease && running !== undefined) {
          throw new ModuleError(
            `the guest runs ${running}, the module is built for ${b.release}`,
            '',
            `A module loads only into the kernel it was built against: \`m5dev down\`, then \`m5dev up --kernel ${ctx.version}\`.`,
          );
        }
        const [log, report = ''] = output.split(`${MODULE_LOAD.mark}\n`);
        ctx.loadLog = log;
        if (r.exitCode !== 0) throw new ModuleError(`copying or loading the module in the guest failed`, output);
        ctx.loaded = parseLoadReport(report);
        const devices = ctx.loaded.devices.length ? `; ${ctx.loaded.devices.join(', ')}` : '';
        task.title = `Loaded ${b.modules.join(', ')} into ${b.release}${devices}`;
      },
    },
  ];
}

/** The guest's side of `module load` (sh/guest/module-load.sh), as one command under one sudo. */
export function loadCommand(release: string, params: string[]): GuestCommand {
  return guestScript('moduleLoad', [release, ...params], { root: true });
}

function startLoad(ctx: ModuleCtx, release: string): FedCommand {
  return ctx.ssh!.startFed(loadCommand(release, ctx.params), { timeoutMs: 120_000 });
}

/** The built modules as one tar, in memory (a few hundred KiB). */
async function modulesTar(b: ModuleBuild): Promise<Buffer> {
  const { pack } = await import('tar-fs');
  const chunks: Buffer[] = [];
  for await (const c of pack(b.dir, { entries: b.modules, map: (h) => ({ ...h, uid: 0, gid: 0, uname: 'root', gname: 'root' }) })) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export function moduleTestTasks(): ListrTask<ModuleCtx>[] {
  return [
    {
      title: 'Run the user-space test in the guest (unprivileged)',
      task: async (ctx, task) => {
        const b = ctx.build!;
        if (!b.test) throw new UsageError(`${ctx.srcDir} has no ${TEST_SOURCE}`, 'Add a test program there; it prints TAP and exits 0 on success.');
        const up = await ctx.ssh!.upload(join(b.dir, b.test), `/tmp/${b.test}`, '0755');
        if (up.exitCode !== 0) throw new ModuleError('copying the test to the guest failed', `${up.stdout}${up.stderr}`);
        const r = await guest(ctx.ssh!, guestArgv([`/tmp/${b.test}`]));
        ctx.tapText = r.output;
        ctx.tapExit = r.exitCode;
        ctx.tap = parseTap(r.output);
        if (r.exitCode !== 0 || !tapPassed(ctx.tap)) {
          throw new ModuleError(`${ctx.tap.failed.length || 'some'} check(s) failed in the guest (exit ${r.exitCode})`, r.output);
        }
        task.title = `Test passed: ${ctx.tap.passed}/${ctx.tap.planned} checks`;
      },
    },
    {
      title: 'Unload the module cleanly',
      task: async (ctx, task) => {
        const names = ctx.build!.modules.map(moduleName);
        const r = await guest(ctx.ssh!, guestScript('moduleUnload', names, { root: true }));
        if (r.exitCode !== 0) throw new ModuleError('unloading the module failed or the kernel complained', r.output);
        task.title = `Unloaded ${names.join(', ')}; no kernel warnings`;
      },
    },
  ];
}
