/** `m5dev image build`: build (or reuse) the toolchain image. */
import type { Command } from 'commander';
import type { ImageCtx } from '../../workflows/image-build.js';
import { runTasks, printJson } from '../ui.js';
import { globalOpts } from '../options.js';
import { DEFAULTS } from '../../config.js';

export function registerImage(program: Command): void {
  const image = program.command('image').description('manage the toolchain image (QEMU, EFI firmware, cloud-image-utils, cross gcc)');
  image
    .command('build')
    .description('build the toolchain image; a no-op when docker/ is unchanged')
    .option('--base-image <ref>', 'base image (build arg BASE_IMAGE)', DEFAULTS.baseImage)
    .option('--context <dir>', 'build context directory (default: the packaged docker/)')
    .action(async (opts: { baseImage: string; context?: string }, cmd: Command) => {
      const g = globalOpts(cmd);
      const { imageTasks, newImageCtx } = await import('../../workflows/image-build.js');
      const ctx = await runTasks<{ image: ImageCtx }>(imageTasks(), { image: newImageCtx(opts.baseImage, opts.context) }, g);
      const result = { tag: ctx.image.tag, imageId: ctx.image.imageId, cached: ctx.image.cached === true, contextHash: ctx.image.hash };
      if (g.json) printJson(result);
      else process.stdout.write(`${result.tag}${result.cached ? ' (cached)' : ''}\n`);
    });
}
