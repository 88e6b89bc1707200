/**
 * The module loop: build the module (and its user-space test) in the toolchain container against
 * the cached kernel tree, copy it into the running guest, insmod, and run the test there.
 */
import { createWriteStream, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { pipeline } from 'node:stream/promises';
import { basename, join } from 'node:path';
import type { ListrTask } from 'listr2';
import { homeStoresTask, imageTasks, newImageCtx, toolchainIdentity, type ImageCtx } from './image-build.js';
import type { HomeLayout } from '../paths.js';
import { hashFiles, listContext } from '../docker/build-context.js';
import { runTool } from '../docker/containers.js';
import { canExecTool, execTool, type ExecHost } from '../docker/exec-tool.js';
import { ModuleError, UsageError } from '../errors.js';
import { publishDir } from '../staging.js';
import { toolchainCompiler } from '../docker/compiler.js';
import { KERNELS_MOUNT, inContainer, moduleBuildDir, requireKernel, type KernelRecord } from '../kernel/cache.js';
import { containerEnv, makeArgs } from '../kernel/build-spec.js';
import type { HomeStores } from '../engine/instance-storage.js';
import { getTree, putFiles } from '../engine/archive.js';
import { builtFor, moduleSources, parseTap, tapPassed, vermagicOf, type TapSummary } from '../module/artifacts.js';
import type { GuestSsh } from '../ssh/client.js';
import { shScript, shellQuote } from '../shell.js';

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
  /** The running guest's VM container: the build runs in it when it has this toolchain and the kernel trees. */
  vm?: ExecHost;
  build?: ModuleBuild;
  cached?: boolean;
  loadLog?: string;
  /** What loading added in the guest: device nodes, and sysfs parameters with their values. */
  loaded?: LoadReport;
  tap?: TapSummary;
  tapText?: string;
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
    { title: 'Toolchain image', task: (_ctx, task) => task.newListr<ModuleCtx>(imageTasks<ModuleCtx>(), { concurrent: false }) },
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
        const sources = moduleSources(listContext(ctx.srcDir));
        const compiler = await toolchainCompiler(ctx.image.docker!, ctx.image.tag!, ctx.image.imageId!, ctx.home.root);
        const dir = moduleBuildDir(ctx.home, kernel.key, hashFiles(ctx.srcDir, sources, { toolchain: toolchainIdentity(ctx.image), compiler }));
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
          const script = (mod: string) =>
            [
              makeArgs(paths, ['modules'], { extra: [`M=${mod}`] }).map(shellQuote).join(' '),
              ...(hasTest ? [`aarch64-linux-gnu-gcc -static -O2 -Wall -Wextra -Werror -o ${mod}/${TEST_BINARY} ${mod}/${TEST_SOURCE}`] : []),
            ].join(' && ');
          const files = (mod: string) => sources.map((rel) => ({ name: `${mod}/${rel}`, data: readFileSync(join(ctx.srcDir, rel)) }));
          const failure = (message: string, out: string) => new ModuleError(message, out, 'Fix the compile error above and run the command again.');
          const docker = ctx.image.docker!;
          // Sources in and results out as tar streams: the engine needs to see nothing of this machine.
          if (ctx.vm && (await canExecTool(ctx.vm, ctx.image.imageId!, KERNELS_MOUNT))) {
            // The running guest's VM container has this toolchain and the kernel trees: no tool container.
            await execTool(ctx.vm, {
              script: (at) => script(`${at}/mod`),
              env: containerEnv(),
              description: 'Building the module',
              before: (at) => putFiles(docker, ctx.vm!.id, at, files('mod')),
              after: (at) => getTree(docker, ctx.vm!.id, `${at}/mod`, partial),
              failure,
            });
          } else {
            await runTool(docker, {
              image: ctx.image.tag!,
              cmd: ['sh', '-c', `${script(MOD_MOUNT)} 2>&1`],
              binds: [ctx.stores!.kernels.bind(KERNELS_MOUNT, true)],
              env: containerEnv(),
              home: ctx.home.root,
              description: 'Building the module',
              before: (id) => putFiles(docker, id, '/', files(MOD_MOUNT.slice(1))),
              after: (id) => getTree(docker, id, MOD_MOUNT, partial),
              onLine: (l) => {
                task.output = l;
              },
              failure,
            });
          }
          const modules = readdirSync(partial).filter((f) => f.endsWith('.ko')).sort();
          if (modules.length === 0) throw new ModuleError('the build produced no .ko', '', 'Check obj-m in the module Makefile.');
          const vermagic = vermagicOf(readFileSync(join(partial, modules[0]!))) ?? '';
          if (!builtFor(vermagic, kernel.release)) {
            throw new ModuleError(`${modules[0]} has vermagic "${vermagic}", not kernel ${kernel.release}`, '', 'Rebuild the kernel: `m5dev kernel build`.');
          }
          const build: ModuleBuild = { dir, modules, test: hasTest ? TEST_BINARY : undefined, vermagic, release: kernel.release };
          writeFileSync(join(partial, RECORD), `${JSON.stringify(build, null, 2)}\n`);
          return build;
        });
        task.title = `Built ${ctx.build.modules.join(', ')} for ${kernel.release}${ctx.build.test ? ` and ${TEST_BINARY}` : ''}`;
      },
    },
  ];
}

async function guest(ssh: GuestSsh, script: string, opts: { root?: boolean; stdinFile?: string } = {}): Promise<{ exitCode: number; output: string }> {
  const remote = [shScript(script, 'm5dev-module', [], { root: opts.root })];
  const r = opts.stdinFile ? await ssh.captureFrom(opts.stdinFile, remote, { timeoutMs: 120_000 }) : await ssh.capture(remote, { timeoutMs: 120_000 });
  return { exitCode: r.exitCode, output: `${r.stdout}${r.stderr}` };
}

const LOAD_MARK = '--- m5dev: what the module added ---';
const RELEASE_MARK = 'm5dev: the guest runs ';
/** The load command's exit code when the guest runs another kernel than the module's. */
const WRONG_RELEASE = 97;

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
        const names = b.modules.map(moduleName);
        // One SSH command under one sudo: the release check, the copy (a tar on stdin) and the load.
        const script = [
          'set -e',
          `if [ "$(uname -r)" != ${shellQuote(b.release)} ]; then echo "${RELEASE_MARK}$(uname -r)"; exit ${WRONG_RELEASE}; fi`,
          'tar -xof - -C /tmp',
          ...names.map((n) => `if grep -q '^${n} ' /proc/modules; then rmmod ${n}; fi`),
          // What the module adds is what it is for: its device nodes and its sysfs parameters.
          'before=$(mktemp); trap \'rm -f "$before"\' EXIT',
          'ls -1 /dev | sort > "$before"',
          ...b.modules.map((ko) => `insmod /tmp/${ko} ${ctx.params.join(' ')}`),
          'dmesg | tail -n 5',
          `echo ${LOAD_MARK}`,
          'ls -1 /dev | sort | comm -13 "$before" - | while read -r d; do if [ -c "/dev/$d" ] || [ -b "/dev/$d" ]; then echo "device /dev/$d"; fi; done',
          ...names.map((n) => `for f in /sys/module/${n}/parameters/*; do if [ -f "$f" ]; then echo "parameter ${n}.$(basename "$f")=$(cat "$f")"; fi; done`),
        ].join('\n');
        const r = await withModulesTar(b, (tar) => guest(ctx.ssh!, script, { root: true, stdinFile: tar }));
        const running = new RegExp(`^${RELEASE_MARK}(.*)$`, 'm').exec(r.output)?.[1];
        if (r.exitCode === WRONG_RELEASE && running !== undefined) {
          throw new ModuleError(
            `the guest runs ${running}, the module is built for ${b.release}`,
            '',
            `A module loads only into the kernel it was built against: \`m5dev down\`, then \`m5dev up --kernel ${ctx.version}\`.`,
          );
        }
        const [log, report = ''] = r.output.split(`${LOAD_MARK}\n`);
        ctx.loadLog = log;
        if (r.exitCode !== 0) throw new ModuleError(`copying or loading the module in the guest failed`, r.output);
        ctx.loaded = parseLoadReport(report);
        const devices = ctx.loaded.devices.length ? `; ${ctx.loaded.devices.join(', ')}` : '';
        task.title = `Loaded ${b.modules.join(', ')} into ${b.release}${devices}`;
      },
    },
  ];
}

/** The built modules as one tar file (sent on the load command's stdin), removed afterwards. */
async function withModulesTar<T>(b: ModuleBuild, use: (tarPath: string) => Promise<T>): Promise<T> {
  const { pack } = await import('tar-fs');
  const dir = mkdtempSync(join(tmpdir(), 'm5dev-modules-'));
  try {
    const tar = join(dir, 'modules.tar');
    await pipeline(pack(b.dir, { entries: b.modules, map: (h) => ({ ...h, uid: 0, gid: 0, uname: 'root', gname: 'root' }) }), createWriteStream(tar));
    return await use(tar);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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
        const r = await guest(ctx.ssh!, `/tmp/${b.test}`);
        ctx.tapText = r.output;
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
        const script = [
          'set -e',
          ...names.map((n) => `rmmod ${n}`),
          ...names.map((n) => `if grep -q '^${n} ' /proc/modules; then echo "${n} still loaded"; exit 1; fi`),
          `if dmesg | tail -n 20 | grep -Ei 'Oops|BUG:|WARNING:|Call trace'; then exit 1; fi`,
        ].join('; ');
        const r = await guest(ctx.ssh!, script, { root: true });
        if (r.exitCode !== 0) throw new ModuleError('unloading the module failed or the kernel complained', r.output);
        task.title = `Unloaded ${names.join(', ')}; no kernel warnings`;
      },
    },
  ];
}
