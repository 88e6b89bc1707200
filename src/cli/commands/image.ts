/** `m5dev image build` (build or reuse the toolchain image) and `m5dev image lock` (re-resolve its package lock). */
import type { Command } from 'commander';
import type { ImageCtx } from '../../workflows/image-build.js';
import type { LockCtx } from '../../workflows/image-lock.js';
import { runTasks, printJson } from '../ui.js';
import { globalOpts, locked } from '../options.js';
import { DEFAULTS } from '../../config.js';
import { layout } from '../../paths.js';
import { UsageError } from '../../errors.js';

export function registerImage(program: Command): void {
  const image = program.command('image').description('manage the toolchain image (QEMU, EFI firmware, cloud-image-utils, cross gcc)');
  image
    .command('build')
    .description('build the toolchain image; a no-op when docker/ (with its package lock) is unchanged')
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

  image
    .command('lock')
    .description("re-resolve the toolchain's packages to the newest served versions on the engine's architecture, rewrite the lock and print what changed")
    .option('--base-image <ref>', 'base image to resolve on', DEFAULTS.baseImage)
    .option('--context <dir>', 'build context whose m5dev-tools/toolchain.lock is rewritten (default: the packaged docker/)')
    .option('--snapshot <url>', "resolve against this snapshot archive and record it in the lock ('-' removes it)")
    .action(async (opts: { baseImage: string; context?: string; snapshot?: string }, cmd: Command) => {
      const g = globalOpts(cmd);
      if (opts.snapshot && opts.snapshot !== '-' && !/^https?:\/\/[A-Za-z0-9._~:/?#@!$&()*+,;=%-]+$/.test(opts.snapshot)) {
        throw new UsageError(`--snapshot ${opts.snapshot} is not an http(s) URL`, 'e.g. --snapshot https://snapshot.debian.org/archive/debian/20261125T000000Z');
      }
      const [{ lockTasks }, { newImageCtx }, { describeChange }] = await Promise.all([
        import('../../workflows/image-lock.js'),
        import('../../workflows/image-build.js'),
        import('../../docker/toolchain-lock.js'),
      ]);
      const ctx: LockCtx = { image: newImageCtx(opts.baseImage, opts.context), home: layout(), snapshot: opts.snapshot };
      const done = await locked(cmd, 'toolchain-lock', 'the toolchain lock', () => runTasks<LockCtx>(lockTasks(), ctx, g));
      const changes = done.changes ?? [];
      if (g.json) printJson({ lock: done.lockPath, arch: done.arch, changes });
      else {
        for (const c of changes) process.stdout.write(`${describeChange(c)}\n`);
        process.stdout.write(`${done.lockPath}: ${changes.length ? `${changes.length} package${changes.length === 1 ? '' : 's'} changed for ${done.arch}` : `unchanged for ${done.arch}`}\n`);
      }
    });
}
