/**
 * `m5dev kernel build`: fetch the pinned tarball, extract it once, configure from the repo's
 * fragment and cross-compile in the toolchain container, all in the engine's kernel storage
 * (mounted at /kernels). Every step is cached by content: the source by tarball digest, the build
 * by (version, tarball, config, toolchain image). On an engine that cannot see this machine's files,
 * a finished build of the same key in this machine's own kernel cache is copied there instead of
 * being built again.
 */
import { cpus } from 'node:os';
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { ListrTask } from 'listr2';
import { homeStoresTask, imageTasks, newImageCtx, toolchainIdentity, type ImageCtx } from './image-build.js';
import type { HomeLayout } from '../paths.js';
import { BlobStore } from '../download/store.js';
import { fetchVerified } from '../download/downloader.js';
import { KernelBuildError } from '../errors.js';
import { onCleanup, type CleanupScope } from '../cleanup.js';
import { makefileVersion, type KernelSource } from '../kernel/source.js';
import { checkConfig, describeMismatches, parseConfig } from '../kernel/config-fragment.js';
import { compileArgs, configureArgs, containerEnv, kernelBuildKey, kernelPaths } from '../kernel/build-spec.js';
import { IMAGE_IN_BUILD, KERNELS_MOUNT, RECORD_IN_BUILD, asideName, buildName, fragmentName, inContainer, markLatest, publishBuild, readBuildRecord, srcName, type KernelRecord } from '../kernel/cache.js';
import { CACHE_IN_CONTAINER } from '../vm/instance.js';
import type { HomeStores } from '../engine/instance-storage.js';
import type { Storage } from '../engine/storage.js';
import { scriptCommand } from '../scripts.js';
import { guestTreeCommand, guestTreeName, hasGuestTree } from '../kernel/guest-tree.js';
import { progressLine, throttledLines } from './progress.js';

export interface KernelCtx {
  image: ImageCtx;
  home: HomeLayout;
  store: BlobStore;
  source: KernelSource;
  fragmentPath: string;
  jobs: number;
  /** Rebuild even when a finished build exists (to check reproducibility). */
  rebuild: boolean;
  stores?: HomeStores;
  fragmentSha256?: string;
  key?: string;
  /** This machine's own finished build of the key, when the engine's storage is elsewhere. */
  localBuild?: KernelRecord;
  /** Whether the engine's kernel storage has the extracted source tree. */
  extracted?: boolean;
  record?: KernelRecord;
  /** Image digest of the build this one replaced (with --rebuild). */
  previousSha256?: string;
  /** The operation's undo actions (a --rebuild puts the finished build it set aside back); set by the command. */
  scope?: CleanupScope;
  /** Drops the put-back of the build set aside, once its replacement is complete. */
  keepRebuild?: () => Promise<void>;
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
  download: (ctx: KernelCtx) =>
    kernelSkipped.built(ctx) || (ctx.extracted ? 'cached: source tree already extracted on the engine' : ctx.store.has(ctx.source.sha256) ? `cached: linux-${ctx.source.version} tarball verified in the store` : false),
  copyTarball: (ctx: KernelCtx) =>
    kernelSkipped.built(ctx) || (ctx.extracted ? 'cached: source tree already extracted on the engine' : ctx.stores?.blobs.clientPath(ctx.source.sha256) ? 'the engine reads the client\'s blob cache' : false),
  extract: (ctx: KernelCtx) => kernelSkipped.built(ctx) || (ctx.extracted ? 'cached: source tree already extracted' : false),
  compile: (ctx: KernelCtx) => kernelSkipped.built(ctx) || (ctx.localBuild ? `copied: ${ctx.localBuild.release} was built from these inputs on this machine` : false),
};

/** A tool run with the kernel storage at /kernels (and the blob cache at /cache, read-only); `owns` are chowned back. */
function tool(ctx: KernelCtx, description: string, cmd: string[], owns: string[], onLine?: (l: string) => void): Promise<string> {
  const { blobs, kernels } = ctx.stores!;
  return ctx.image.toolchain!.engine.runTool({
    image: ctx.image.toolchain!.tag,
    cmd,
    binds: [kernels.bind(KERNELS_MOUNT), blobs.bind(CACHE_IN_CONTAINER, true)],
    env: containerEnv(),
    home: ctx.home.root,
    chownPaths: owns.map(inContainer),
    owner: ctx.image.owner,
    description,
    onLine,
    failure: (message, out) => new KernelBuildError(message, out),
  });
}

/**
 * `--rebuild`: the finished build moves aside. Should this build fail or be cut short (Ctrl-C,
 * SIGTERM), the operation's scope puts it back; once the new build is published, it is removed.
 */
async function setAside(ctx: KernelCtx, ks: Storage, key: string): Promise<void> {
  await ks.removeTree(asideName(key));
  await ks.syncRename([[buildName(key), asideName(key)]]);
  const drop = ctx.scope!.defer('put the finished kernel build back', () => putBack(ks, key));
  ctx.keepRebuild = async () => {
    drop();
    await ks.removeTree(asideName(key));
  };
}

/** The build set aside back in its place, over whatever the rebuild left there. */
async function putBack(ks: Storage, key: string): Promise<void> {
  await ks.removeTree(buildName(key));
  await ks.syncRename([[asideName(key), buildName(key)]]);
}

/** A rebuild killed outright (kill -9) left the last finished build aside: it comes back. */
async function restoreAside(ks: Storage, key: string): Promise<KernelRecord | undefined> {
  if ((await ks.stat([`${asideName(key)}/${RECORD_IN_BUILD}`])).size === 0) return undefined;
  await putBack(ks, key);
  return readBuildRecord(ks, key);
}

export function kernelTasks(): ListrTask<KernelCtx>[] {
  return [
    ...imageTasks<KernelCtx>(),
    homeStoresTask<KernelCtx>(),
    {
      title: 'Build inputs',
      task: async (ctx, task) => {
        const ks = ctx.stores!.kernels;
        ctx.fragmentSha256 = createHash('sha256').update(readFileSync(ctx.fragmentPath)).digest('hex');
        const compiler = await ctx.image.toolchain!.engine.toolchainCompiler(ctx.image.toolchain!.tag, ctx.image.toolchain!.imageId, ctx.home.root);
        ctx.key = kernelBuildKey({ version: ctx.source.version, tarballSha256: ctx.source.sha256, fragmentSha256: ctx.fragmentSha256, toolchainTag: toolchainIdentity(ctx.image.toolchain!), compiler });
        const existing = (await readBuildRecord(ks, ctx.key)) ?? (await restoreAside(ks, ctx.key));
        if (ctx.rebuild) {
          // From scratch: neither the finished tree nor an interrupted one is reused. The finished
          // one is set aside (a rename), not removed, until its replacement is complete.
          ctx.previousSha256 = existing?.imageSha256;
          if (existing) await setAside(ctx, ks, ctx.key);
          else await ks.removeTree(buildName(ctx.key));
        } else if (existing) {
          ctx.record = existing;
          await markLatest(ks, existing);
        } else if (!ks.clientPath(buildName(ctx.key))) {
          // The engine keeps its own kernel cache: a build of these inputs on this machine is copied in, not redone.
          const local = join(ctx.home.kernels, buildName(ctx.key), RECORD_IN_BUILD);
          if (existsSync(local)) ctx.localBuild = JSON.parse(readFileSync(local, 'utf8')) as KernelRecord;
        }
        ctx.extracted = (await ks.stat([`${srcName(ctx.source.sha256)}/Makefile`])).size > 0;
        task.title = `Build inputs: linux-${ctx.source.version}, config ${ctx.fragmentSha256.slice(0, 12)}…, key ${ctx.key}`;
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
      title: 'Copy the kernel source to the engine',
      skip: kernelSkipped.copyTarball,
      task: async (ctx, task) => {
        const blobs = ctx.stores!.blobs;
        if ((await blobs.stat([ctx.source.sha256])).size === 0) await blobs.importFile(ctx.store.path(ctx.source.sha256), ctx.source.sha256, ctx.source.sha256);
        task.title = `Kernel source on the engine (verified there, sha256 ${ctx.source.sha256.slice(0, 12)}…)`;
      },
    },
    {
      title: 'Extract the source',
      skip: kernelSkipped.extract,
      task: async (ctx) => {
        // Into a partial tree renamed whole: a cut-short extraction is never taken for a source tree.
        const final = inContainer(srcName(ctx.source.sha256));
        // A failed extraction (a full disk) gives its space back; one cut short by Ctrl-C is removed by the next run.
        const dropPartial = () => ctx.stores!.kernels.removeTree(`${srcName(ctx.source.sha256)}.partial`);
        await tool(
          ctx,
          'Extracting the kernel source',
          scriptCommand('extractSource', [`${CACHE_IN_CONTAINER}/${ctx.source.sha256}`, final]),
          [srcName(ctx.source.sha256)],
        ).catch(async (e: unknown) => {
          await dropPartial();
          throw e;
        });
      },
    },
    {
      title: 'Check the source release',
      skip: kernelSkipped.built,
      task: async (ctx, task) => {
        const makefile = await ctx.stores!.kernels.read(`${srcName(ctx.source.sha256)}/Makefile`);
        const found = makefile ? makefileVersion(makefile.toString('utf8')) : undefined;
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
      title: 'Copy this machine\'s finished build to the engine',
      skip: (ctx) => kernelSkipped.built(ctx) || (ctx.localBuild ? false : 'no finished build of these inputs here'),
      task: async (ctx, task) => {
        const ks = ctx.stores!.kernels;
        const name = buildName(ctx.key!);
        await ks.importTree(join(ctx.home.kernels, name), name);
        // Verified where it landed: the Image must be the one the build recorded.
        const sha = await ks.sha256(ctx.localBuild!.image);
        if (sha !== ctx.localBuild!.imageSha256) {
          await ks.removeTree(name);
          throw new KernelBuildError(`the copied Image has sha256 ${sha}, not ${ctx.localBuild!.imageSha256}`, '', 'Run `m5dev kernel build --rebuild` to build it on this engine.');
        }
        await markLatest(ks, ctx.localBuild!);
        ctx.record = ctx.localBuild;
        task.title = `Copied the build of ${ctx.localBuild!.release} to the engine (Image verified there)`;
      },
    },
    {
      title: 'Configure (allnoconfig + fragment)',
      skip: kernelSkipped.built,
      task: async (ctx, task) => {
        const ks = ctx.stores!.kernels;
        const paths = kernelPaths(ctx.source.sha256, ctx.key!);
        await ks.write([{ name: fragmentName(ctx.fragmentSha256!), data: readFileSync(ctx.fragmentPath) }]);
        await tool(ctx, 'Configuring the kernel', scriptCommand('kernelMake', [paths.build, ...configureArgs(paths, inContainer(fragmentName(ctx.fragmentSha256!)))]), [buildName(ctx.key!)]);
        const config = await ks.read(`${buildName(ctx.key!)}/.config`);
        const bad = checkConfig(parseConfig(readFileSync(ctx.fragmentPath, 'utf8')), parseConfig(config?.toString('utf8') ?? ''));
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
        const ks = ctx.stores!.kernels;
        const started = Date.now();
        const build = buildName(ctx.key!);
        // A failed or interrupted build keeps its tree (no record yet): the next run continues incrementally.
        const paths = kernelPaths(ctx.source.sha256, ctx.key!);
        await tool(ctx, 'Building the kernel', scriptCommand('kernelMake', [paths.build, ...compileArgs(paths, ctx.jobs)]), [build], throttledLines((line) => {
          task.output = line;
        }));
        ctx.seconds = (Date.now() - started) / 1000;
        const image = `${build}/${IMAGE_IN_BUILD}`;
        const record: KernelRecord = {
          version: ctx.source.version,
          release: ((await ks.read(`${build}/include/config/kernel.release`))?.toString('utf8') ?? '').trim(),
          key: ctx.key!,
          src: srcName(ctx.source.sha256),
          build,
          image,
          imageSha256: await ks.sha256(image),
          toolchainTag: toolchainIdentity(ctx.image.toolchain!),
          configSha256: await ks.sha256(`${build}/.config`),
        };
        await publishBuild(ks, record);
        await ctx.keepRebuild?.();
        ctx.record = record;
        task.title = `Built ${record.release} in ${ctx.seconds.toFixed(0)} s (Image sha256 ${record.imageSha256.slice(0, 12)}…)`;
      },
    },
    {
      // Also for a build made before this step existed: it needs only the finished tree.
      title: 'Guest module tree (modules, modules.dep, a build tree with arm64 host programs)',
      task: async (ctx, task) => {
        const rec = ctx.record!;
        const ks = ctx.stores!.kernels;
        if (await hasGuestTree(ks, rec)) {
          task.skip(`cached: /lib/modules/${rec.release} and its build tree for the guest`);
          return;
        }
        await tool(ctx, 'Making the guest module tree', guestTreeCommand(rec), [guestTreeName(rec)]);
        task.title = `Guest module tree: /lib/modules/${rec.release}, build → /usr/src/linux-headers-${rec.release} (host programs for arm64)`;
      },
    },
  ];
}
