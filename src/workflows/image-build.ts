/** Prepare the toolchain image: engine reachable, base image present, image built once per context hash. */
import type { ListrTask } from 'listr2';
import { connectEngine, type Engine, type EngineInfo } from '../engine/engine.js';
import { contextHash, toolchainStageHash } from '../docker/build-context.js';
import { buildImage, ensureBaseImage, imageId, imageLabels, readImageFile } from '../docker/images.js';
import { LABELS, baseLabels } from '../docker/labels.js';
import { MESSAGES } from '../messages.js';
import type { HomeLayout } from '../paths.js';
import { homeStores, type HomeStores } from '../engine/instance-storage.js';
import { checkError, platformCheck } from '../engine/doctor.js';
import { DOCKER_CONTEXT } from '../assets.js';
import { toolchainTag } from '../docker/toolchain-tag.js';
import { LOCK_FILE, debianArch, isDriftLine, lockFailure, parseDrift, parseLock, type LockDrift, type ToolchainLock } from '../docker/toolchain-lock.js';
import { ImageBuildError, UsageError } from '../errors.js';
import { pullImage } from '../docker/image-transfer.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export { TOOLCHAIN_REPO, toolchainTag } from '../docker/toolchain-tag.js';

/** Where m5dev-install-locked records the image's drift from its lock ("NAME LOCKED SERVED" lines). */
const DRIFT_RECORD = '/usr/local/share/m5dev/lock-drift';

export interface ImageCtx {
  /** Owner for files tool containers write into the client's directories (see Engine.owner). */
  owner?: { uid: number; gid: number };
  contextDir: string;
  baseImage: string;
  engine?: Engine;
  engineInfo?: EngineInfo;
  baseId?: string;
  hash?: string;
  /** The toolchain stage's own hash (toolchainStageHash): kernel and module builds are keyed by it. */
  toolsHash?: string;
  tag?: string;
  /** Set when the tag already existed before this run. */
  cached?: boolean;
  imageId?: string;
  /** A toolchain image to use as it is (`--toolchain REF`, M5DEV_TOOLCHAIN): loaded, pulled by digest, or built elsewhere. */
  given?: string;
  /** `--strict-lock` / M5DEV_STRICT_LOCK=1: a locked version the mirror no longer serves, or that no longer installs, fails the build (its own tag). */
  strict?: boolean;
  /** Locked packages this build installed at another version: the mirror no longer serves the locked one, or it no longer installs beside the base's packages. */
  drift?: LockDrift[];
}

/**
 * The toolchain as kernel and module cache keys name it: its toolchain stage (the compiler, the lock,
 * the base; not the m5ops plugin built beside it), the same whether it was built here, loaded, or
 * pulled by digest under another name; for an image from before that label, the tag its context
 * hash gives; else the reference it was given by.
 */
export function toolchainIdentity(img: ImageCtx): string {
  if (img.toolsHash) return `m5dev/toolchain-stage:${img.toolsHash.slice(0, 16)}`;
  return img.hash ? toolchainTag(img.hash) : img.tag!;
}

export function newImageCtx(baseImage: string, contextDir = DOCKER_CONTEXT, given = process.env.M5DEV_TOOLCHAIN || undefined, strict = process.env.M5DEV_STRICT_LOCK === '1'): ImageCtx {
  return { contextDir, baseImage, given, strict };
}

/** The build args of the toolchain image; a strict build is its own image (and tag). */
export function toolchainBuildArgs(img: ImageCtx): Record<string, string> {
  return { BASE_IMAGE: img.baseImage, ...(img.strict ? { M5DEV_STRICT_LOCK: '1' } : {}) };
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
      const e = (ctx.image.engineInfo = await ctx.image.engine.info());
      const platform = platformCheck(e);
      if (platform.status === 'fail') throw checkError(platform);
      // What an m5dev killed with -9 left running on this engine goes before we touch the files it wrote.
      const orphans = await ctx.image.engine.sweepOrphanTools();
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
        const docker = ctx.image.engine!.docker;
        if (ctx.image.given) {
          await useGivenToolchain(ctx.image.engine!, ctx.image);
          task.title = `Toolchain image ${ctx.image.given} (given; ${ctx.image.imageId!.slice(7, 19)})`;
          return;
        }
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
        ctx.image.hash = contextHash(ctx.image.contextDir, { ...toolchainBuildArgs(ctx.image), BASE_IMAGE_ID: ctx.image.baseId });
        ctx.image.toolsHash = toolchainStageHash(ctx.image.contextDir, { ...toolchainBuildArgs(ctx.image), BASE_IMAGE_ID: ctx.image.baseId });
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
        const driftLines: string[] = [];
        img.imageId = await buildImage(img.engine!.docker, {
          contextDir: img.contextDir,
          tag: img.tag!,
          buildArgs: toolchainBuildArgs(img),
          labels: { ...baseLabels('toolchain'), [LABELS.contextHash]: img.hash!, [LABELS.toolsHash]: img.toolsHash! },
          explain: lockFailure,
          onLine: (line) => {
            if (isDriftLine(line)) driftLines.push(line);
            task.output = line;
          },
        });
        // A build the engine's layer cache answered replays no output: then the image's own record says it.
        img.drift = driftLines.length ? parseDrift(driftLines.join('\n')) : await imageLockDrift(img.engine!, img.tag!);
        task.title = MESSAGES.imageBuilt(img.tag!);
        if (img.drift.length) task.title += `; ${MESSAGES.lockDrift(img.drift)}`;
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
  return baseId ? toolchainTag(contextHash(contextDir, { ...toolchainBuildArgs({ baseImage, contextDir, strict: process.env.M5DEV_STRICT_LOCK === '1' }), BASE_IMAGE_ID: baseId })) : undefined;
}

/** What a toolchain image recorded of its lock's drift (an image built before the record, or given, has none). */
export async function imageLockDrift(engine: Engine, ref: string): Promise<LockDrift[]> {
  return parseDrift(await readImageFile(engine.docker, ref, DRIFT_RECORD));
}

/** The toolchain lock of a build context, if it has one (a custom `--context` may not). */
export function readContextLock(contextDir: string): ToolchainLock | undefined {
  const path = join(contextDir, LOCK_FILE);
  return existsSync(path) ? parseLock(readFileSync(path, 'utf8'), path) : undefined;
}

/**
 * `--toolchain REF`: that image, as it is. A digest-pinned REF missing from the engine is pulled
 * (and verified by the engine against the digest); anything else must be there already.
 */
async function useGivenToolchain(engine: Engine, img: ImageCtx): Promise<void> {
  const docker = engine.docker;
  const ref = img.given!;
  let id = await imageId(docker, ref);
  if (!id && /@sha256:[0-9a-f]{64}$/.test(ref)) id = (await pullImage(docker, ref)).id;
  if (!id) throw new UsageError(`toolchain image ${ref} is not on the engine`, 'Load it with `m5dev image load FILE`, or give it pinned by digest (REF@sha256:…) so it is pulled.');
  const labels = await imageLabels(docker, ref);
  img.tag = ref;
  img.imageId = id;
  img.hash = labels[LABELS.contextHash];
  img.toolsHash = labels[LABELS.toolsHash];
  img.cached = true;
}
