/** Prepare the toolchain image: engine reachable, base image present, image built once per context hash. */
import type Docker from 'dockerode';
import type { ListrTask } from 'listr2';
import { connectDocker } from '../docker/client.js';
import { contextHash } from '../docker/build-context.js';
import { buildImage, ensureBaseImage, imageId } from '../docker/images.js';
import { LABELS, baseLabels } from '../docker/labels.js';
import { MESSAGES } from '../messages.js';
import { DOCKER_CONTEXT } from '../assets.js';

export const TOOLCHAIN_REPO = 'm5dev/toolchain';

export interface ImageCtx {
  contextDir: string;
  baseImage: string;
  docker?: Docker;
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

export function imageTasks<Ctx extends { image: ImageCtx }>(): ListrTask<Ctx>[] {
  return [
    {
      title: 'Connect to the Docker engine',
      task: async (ctx) => {
        ctx.image.docker = await connectDocker();
      },
    },
    {
      title: 'Base image',
      task: async (ctx, task) => {
        const docker = ctx.image.docker!;
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
          onLine: (line) => {
            task.output = line;
          },
        });
        task.title = MESSAGES.imageBuilt(img.tag!);
      },
    },
  ];
}
