/** Prepare the toolchain image: engine reachable, base image present, image built once per context hash. */
import type Docker from 'dockerode';
import type { ListrTask } from 'listr2';
import { connectEngine, type Engine, type EngineInfo } from '../engine/engine.js';
import { contextHash } from '../docker/build-context.js';
import { buildImage, ensureBaseImage, imageId } from '../docker/images.js';
import { LABELS, baseLabels } from '../docker/labels.js';
import { sweepOrphanTools } from '../docker/containers.js';
import { MESSAGES } from '../messages.js';
import type { HomeLayout } from '../paths.js';
import { homeStores, type HomeStores } from '../engine/instance-storage.js';
import { checkError, platformCheck } from '../engine/doctor.js';
import { DOCKER_CONTEXT } from '../assets.js';
import { LOCK_FILE, debianArch, lockFailure, parseLock, type ToolchainLock } from '../docker/toolchain-lock.js';
import { ImageBuildError } from '../errors.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const TOOLCHAIN_REPO = 'm5dev/toolchain';

export interface ImageCtx {
  /** Owner for files tool containers write into the client's directories (see Engine.owner). */
  owner?: { uid: number; gid: number };
  contextDir: string;
  baseImage: string;
  engine?: Engine;
  docker?: Docker;
  engineInfo?: EngineInfo;
  baseId?: string;
  hash?: string;
  tag?: string;
  /** Set when the tag already existed before this run. */
  cached?: boolean;
  imageId?: string;
}

export function newImageCtx(baseImage: string, contextDir = DOCKER_CONTEXT): ImageCtx {
  return { contextDir, baseImage };
}

export function toolchainTag(hash: string, repo = TOOLCHAIN_REPO): string {
  return `${repo}:${hash.slice(0, 16)}`;
}

/** Pure skip predicate: a reason string when the image for this hash already exists. */
export function imageBuildSkipped(ctx: ImageCtx): string | false {
  return ctx.cached && ctx.tag ? MESSAGES.imageCached(ctx.tag) : false;
}

/** Connect to the engine, check its platform, and sweep what a killed m5dev left running there. */
export function engineTask<Ctx extends { image: ImageCtx }>(): ListrTask<Ctx> {
  return {
    title: 'Connect to the Docker engine',
    task: async (ctx, task) => {
      ctx.image.engine = await connectEngine();
      ctx.image.docker = ctx.image.engine.docker;
      const e = (ctx.image.engineInfo = await ctx.image.engine.info());
      const platform = platformCheck(e);
      if (platform.status === 'fail') throw checkError(platform);
      // What an m5dev killed with -9 left running on this engine goes before we touch the files it wrote.
      const orphans = await sweepOrphanTools(ctx.image.docker);
      task.title = `Docker engine: ${e.product} ${e.version}, ${e.os}/${e.arch}${e.rootless ? ', rootless' : ''} at ${e.host} (${e.source})${orphans ? `; removed ${orphans} tool container${orphans === 1 ? '' : 's'} of a killed m5dev` : ''}`;
    },
  };
}

export function imageTasks<Ctx extends { image: ImageCtx }>(): ListrTask<Ctx>[] {
  return [
    engineTask<Ctx>(),
    {
      title: 'Base image',
      task: async (ctx, task) => {
        const docker = ctx.image.docker!;
        // A base the lock pins by registry digest is pulled and built by that digest.
        const lock = readContextLock(ctx.image.contextDir);
        const arch = debianArch(ctx.image.engineInfo!.arch);
        if (lock && !lock.packages.has(arch)) {
          const why = lockFailure(`m5dev-lock: no-arch ${arch}`)!;
          throw new ImageBuildError(why.message, '', why.hint);
        }
        const pinned = lock?.bases.get(arch);
        if (pinned?.repoDigest && pinned.ref === ctx.image.baseImage) ctx.image.baseImage = `${pinned.ref.replace(/:[^/:]+$/, '')}@${pinned.repoDigest}`;
        ctx.image.baseId = await ensureBaseImage(docker, ctx.image.baseImage);
        ctx.image.hash = contextHash(ctx.image.contextDir, { BASE_IMAGE: ctx.image.baseImage, BASE_IMAGE_ID: ctx.image.baseId });
        ctx.image.tag = toolchainTag(ctx.image.hash);
        const existing = await imageId(docker, ctx.image.tag);
        ctx.image.cached = existing !== undefined;
        if (existing) ctx.image.imageId = existing;
        task.title = `Base image ${ctx.image.baseImage} (${ctx.image.baseId.slice(7, 19)})`;
      },
    },
    {
      title: 'Build the toolchain image',
      skip: (ctx) => imageBuildSkipped(ctx.image),
      task: async (ctx, task) => {
        const img = ctx.image;
        img.imageId = await buildImage(img.docker!, {
          contextDir: img.contextDir,
          tag: img.tag!,
          buildArgs: { BASE_IMAGE: img.baseImage },
          labels: { ...baseLabels('toolchain'), [LABELS.contextHash]: img.hash! },
          explain: lockFailure,
          onLine: (line) => {
            task.output = line;
          },
        });
        task.title = MESSAGES.imageBuilt(img.tag!);
      },
    },
  ];
}

/** Kernel and module builds: the engine's blob and kernel storages, and the owner of what tools write there. */
export function homeStoresTask<Ctx extends { image: ImageCtx; home: HomeLayout; stores?: HomeStores }>(): ListrTask<Ctx> {
  return {
    title: 'Kernel cache on the engine',
    task: async (ctx, task) => {
      ctx.stores = await homeStores(ctx.image.engine!, ctx.home, ctx.image.tag!);
      ctx.image.owner = ctx.image.engine!.owner(ctx.stores.mode, ctx.image.engineInfo!.rootless);
      task.title = ctx.stores.mode === 'shared' ? `Kernel cache in ${ctx.home.kernels}` : 'Kernel cache in a volume on the engine';
    },
  };
}

/** The toolchain tag this package would build on an engine (its base image must be there). */
export async function toolchainTagOn(engine: Engine, baseImage: string, contextDir = DOCKER_CONTEXT): Promise<string | undefined> {
  const baseId = await imageId(engine.docker, baseImage);
  return baseId ? toolchainTag(contextHash(contextDir, { BASE_IMAGE: baseImage, BASE_IMAGE_ID: baseId })) : undefined;
}

/** The toolchain lock of a build context, if it has one (a custom `--context` may not). */
export function readContextLock(contextDir: string): ToolchainLock | undefined {
  const path = join(contextDir, LOCK_FILE);
  return existsSync(path) ? parseLock(readFileSync(path, 'utf8'), path) : undefined;
}
