/**
 * `m5dev kernel build`: fetch the pinned tarball, extract it once, configure from the repo's
 * fragment and cross-compile in the toolchain container. Every step is cached by content:
 * the source by tarball digest, the build by (version, tarball, config, toolchain image).
 */
import { cpus } from 'node:os';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import type { ListrTask } from 'listr2';
import { imageTasks, newImageCtx, sharedFilesTask, type ImageCtx } from './image-build.js';
import type { HomeLayout } from '../paths.js';
import { BlobStore, sha256File } from '../download/store.js';
import { fetchVerified } from '../download/downloader.js';
import { runTool } from '../docker/containers.js';
import { KernelBuildError } from '../errors.js';
import { onCleanup } from '../cleanup.js';
import { makefileVersion, type KernelSource } from '../kernel/source.js';
import { checkConfig, describeMismatches, parseConfig } from '../kernel/config-fragment.js';
import { KERNEL_MOUNTS, compileArgs, configureArgs, containerEnv, kernelBuildKey } from '../kernel/build-spec.js';
import { IMAGE_IN_BUILD, kernelBuildDir, kernelSrcDir, markLatest, publishBuild, readBuildRecord, type KernelRecord } from '../kernel/cache.js';
import { shellQuote } from '../shell.js';
import { progressLine, throttledLines } from './progress.js';
import { publishDir } from '../staging.js';

export interface KernelCtx {
  image: ImageCtx;
  home: HomeLayout;
  store: BlobStore;
  source: KernelSource;
  fragmentPath: string;
  jobs: number;
  /** Rebuild even when a finished build exists (to check reproducibility). */
  rebuild: boolean;
  key?: string;
  srcDir?: string;
  record?: KernelRecord;
  /** Image digest of the build this one replaced (with --rebuild). */
  previousSha256?: string;
  seconds?: number;
}

export function newKernelCtx(home: HomeLayout, source: KernelSource, fragmentPath: string, opts: { baseImage: string; jobs?: number; rebuild?: boolean }): KernelCtx {
  return {
    image: newImageCtx(opts.baseImage),
    home,
    store: new BlobStore(home),
    source,
    fragmentPath,
    jobs: opts.jobs ?? cpus().length,
    rebuild: opts.rebuild ?? false,
  };
}

export const kernelSkipped = {
  built: (ctx: KernelCtx) => (ctx.record ? `cached: ${ctx.record.release} built from these inputs (${ctx.record.key})` : false),
  download: (ctx: KernelCtx) => kernelSkipped.built(ctx) || (ctx.store.has(ctx.source.sha256) ? `cached: linux-${ctx.source.version} tarball verified in the store` : false),
  extract: (ctx: KernelCtx) => kernelSkipped.built(ctx) || (existsSync(join(kernelSrcDir(ctx.home, ctx.source.sha256), 'Makefile')) ? 'cached: source tree already extracted' : false),
};

function tool(ctx: KernelCtx, description: string, cmd: string[], binds: string[], onLine?: (l: string) => void): Promise<string> {
  return runTool(ctx.image.docker!, {
    image: ctx.image.tag!,
    cmd,
    binds,
    env: containerEnv(),
    home: ctx.home.root,
    chownPaths: binds.filter((b) => !b.endsWith(':ro')).map((b) => b.split(':')[1]!),
    owner: ctx.image.owner,
    description,
    onLine,
    failure: (message, out) => new KernelBuildError(message, out),
  });
}

export function kernelTasks(): ListrTask<KernelCtx>[] {
  return [
    { title: 'Toolchain image', task: (_ctx, task) => task.newListr<KernelCtx>(imageTasks<KernelCtx>(), { concurrent: false }) },
    sharedFilesTask<KernelCtx>(),
    {
      title: 'Build inputs',
      task: (ctx, task) => {
        const fragmentSha256 = createHash('sha256').update(readFileSync(ctx.fragmentPath)).digest('hex');
        ctx.key = kernelBuildKey({ version: ctx.source.version, tarballSha256: ctx.source.sha256, fragmentSha256, toolchainTag: ctx.image.tag! });
        const dir = kernelBuildDir(ctx.home, ctx.key);
        const existing = readBuildRecord(dir);
        if (ctx.rebuild) {
          // From scratch: neither the finished tree nor an interrupted one is reused.
          ctx.previousSha256 = existing?.imageSha256;
          rmSync(dir, { recursive: true, force: true });
          rmSync(`${dir}.partial`, { recursive: true, force: true });
        } else if (existing) {
          ctx.record = existing;
          markLatest(ctx.home, existing);
        }
        task.title = `Build inputs: linux-${ctx.source.version}, config ${fragmentSha256.slice(0, 12)}…, key ${ctx.key}`;
      },
    },
    {
      title: 'Download the kernel source',
      skip: kernelSkipped.download,
      task: async (ctx, task) => {
        const abort = new AbortController();
        const undo = onCleanup('abort kernel download', () => abort.abort());
        try {
          await fetchVerified({
            url: ctx.source.url,
            sha256: ctx.source.sha256,
            store: ctx.store,
            signal: abort.signal,
            onProgress: (p) => {
              task.output = progressLine(p.received, p.total, p.attempt);
            },
          });
        } finally {
          undo();
        }
        task.title = `Downloaded and verified linux-${ctx.source.version} (sha256 ${ctx.source.sha256.slice(0, 12)}…)`;
      },
    },
    {
      title: 'Extract the source',
      skip: kernelSkipped.extract,
      task: async (ctx) => {
        await publishDir(kernelSrcDir(ctx.home, ctx.source.sha256), 'partial source tree', (out) =>
          tool(ctx, 'Extracting the kernel source', ['tar', '-xJf', KERNEL_MOUNTS.tarball, '--strip-components=1', '-C', KERNEL_MOUNTS.out], [
            `${ctx.store.path(ctx.source.sha256)}:${KERNEL_MOUNTS.tarball}:ro`,
            `${out}:${KERNEL_MOUNTS.out}`,
          ]),
        );
      },
    },
    {
      title: 'Check the source release',
      skip: kernelSkipped.built,
      task: (ctx, task) => {
        ctx.srcDir = kernelSrcDir(ctx.home, ctx.source.sha256);
        const found = makefileVersion(readFileSync(join(ctx.srcDir, 'Makefile'), 'utf8'));
        if (found !== ctx.source.version) {
          throw new KernelBuildError(
            `the tarball is linux-${found ?? '?'}, not linux-${ctx.source.version}`,
            `${ctx.source.url}`,
            `A module must be built against the exact kernel it runs: pass --version ${found ?? '<release>'} for this tarball, or point --kernel-url at linux-${ctx.source.version}.`,
          );
        }
        task.title = `Source is linux-${found}`;
      },
    },
    {
      title: 'Configure (allnoconfig + fragment)',
      skip: kernelSkipped.built,
      task: async (ctx, task) => {
        const partial = `${kernelBuildDir(ctx.home, ctx.key!)}.partial`;
        mkdirSync(partial, { recursive: true });
        await tool(ctx, 'Configuring the kernel', configureArgs(), buildBinds(ctx, partial));
        const bad = checkConfig(parseConfig(readFileSync(ctx.fragmentPath, 'utf8')), parseConfig(readFileSync(join(partial, '.config'), 'utf8')));
        if (bad.length) {
          throw new KernelBuildError(
            `${bad.length} option(s) of ${ctx.fragmentPath} did not survive into .config`,
            describeMismatches(bad),
            'Kconfig drops a symbol whose dependencies are off or that this release lacks: add the dependency to the fragment or remove the line.',
          );
        }
        task.title = 'Configured: every fragment option is in .config';
      },
    },
    {
      title: 'Cross-compile Image and modules',
      skip: kernelSkipped.built,
      task: async (ctx, task) => {
        const started = Date.now();
        const partial = `${kernelBuildDir(ctx.home, ctx.key!)}.partial`;
        // A failed or interrupted build keeps its .partial tree: the next run continues incrementally.
        await tool(ctx, 'Building the kernel', ['sh', '-c', `${compileArgs(ctx.jobs).map(shellQuote).join(' ')} 2>&1`], buildBinds(ctx, partial), throttledLines((line) => {
          task.output = line;
        }));
        ctx.seconds = (Date.now() - started) / 1000;
        const release = readFileSync(join(partial, 'include', 'config', 'kernel.release'), 'utf8').trim();
        const buildDir = kernelBuildDir(ctx.home, ctx.key!);
        const record: KernelRecord = {
          version: ctx.source.version,
          release,
          key: ctx.key!,
          imagePath: join(buildDir, IMAGE_IN_BUILD),
          imageSha256: await sha256File(join(partial, IMAGE_IN_BUILD)),
          srcDir: ctx.srcDir!,
          buildDir,
          toolchainTag: ctx.image.tag!,
          configSha256: await sha256File(join(partial, '.config')),
        };
        mkdirSync(dirname(buildDir), { recursive: true });
        publishBuild(ctx.home, partial, record);
        ctx.record = record;
        task.title = `Built ${release} in ${ctx.seconds.toFixed(0)} s (Image sha256 ${record.imageSha256.slice(0, 12)}…)`;
      },
    },
  ];
}

function buildBinds(ctx: KernelCtx, buildDir: string): string[] {
  return [`${ctx.srcDir}:${KERNEL_MOUNTS.src}:ro`, `${buildDir}:${KERNEL_MOUNTS.build}`, `${ctx.fragmentPath}:${KERNEL_MOUNTS.fragment}:ro`];
}
