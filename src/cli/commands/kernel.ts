/** `m5dev kernel build`: the pinned kernel, cross-compiled in the toolchain container. */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DEFAULTS, parseIntOption } from '../../config.js';
import { layout } from '../../paths.js';
import { KERNEL_CONFIG_DIR } from '../../assets.js';
import { ExitCode, UsageError } from '../../errors.js';
import { DEFAULT_KERNEL_VERSION, resolveKernelSource } from '../../kernel/source.js';
import { globalOpts, locked } from '../options.js';
import { listrReporter, printJson } from '../ui.js';
import { cleanupScope } from '../../cleanup.js';

interface KernelFlags {
  version: string;
  kernelUrl?: string;
  kernelSha256?: string;
  config?: string;
  jobs?: string;
  rebuild?: boolean;
  baseImage: string;
}

export const DEFAULT_FRAGMENT = join(KERNEL_CONFIG_DIR, 'm5dev-virt.config');

export function registerKernel(program: Command): void {
  const kernel = program.command('kernel').description('build the guest kernel in the toolchain container');
  kernel
    .command('build')
    .description('fetch, configure and cross-compile a kernel (cached by version, config and toolchain)')
    .option('--version <version>', 'kernel release', DEFAULT_KERNEL_VERSION)
    .option('--kernel-url <url>', 'tarball URL (default: kernel.org), e.g. a mirror or file:// path')
    .option('--kernel-sha256 <hex>', 'tarball SHA-256 (required for versions m5dev does not pin)')
    .option('--config <file>', 'Kconfig fragment applied on allnoconfig (default: config/kernel/m5dev-virt.config)')
    .option('--jobs <n>', 'parallel make jobs (default: number of CPUs)')
    .option('--rebuild', 'build again even if cached (the new Image must match: reproducibility check)')
    .option('--base-image <ref>', 'toolchain base image', DEFAULTS.baseImage)
    .action(async (f: KernelFlags, cmd: Command) => {
      const g = globalOpts(cmd);
      const source = resolveKernelSource({ version: f.version, url: f.kernelUrl, sha256: f.kernelSha256 });
      const fragment = resolve(f.config ?? DEFAULT_FRAGMENT);
      if (!existsSync(fragment)) throw new UsageError(`config fragment ${fragment} does not exist`);
      const jobs = f.jobs === undefined ? undefined : parseIntOption(f.jobs, '--jobs', 1, 256);
      const [{ buildKernel, kernelRequest }, { ensureToolchain, toolchainRequest }] = await Promise.all([import('../../workflows/kernel-build.js'), import('../../workflows/image-build.js')]);
      const req = kernelRequest(layout(), source, fragment, { jobs, rebuild: f.rebuild });
      const report = listrReporter(g);
      // One build per source tree at a time (they share its extraction); a second identical build waits, then reuses the first.
      // Its undo actions run while the lock is held (a --rebuild cut short puts the finished build back before another build looks).
      const done = await locked(cmd, `kernel-${source.sha256}`, `the kernel cache of linux-${source.version}`, async () => {
        await using scope = cleanupScope('kernel build');
        const built = await buildKernel(report, await ensureToolchain(report, toolchainRequest(f.baseImage)), req, scope);
        scope.keep();
        return built;
      });
      const rec = done.record;
      const reproducible = done.previousSha256 === undefined ? null : done.previousSha256 === rec.imageSha256;
      // The Image on this machine when the engine shares its files; else it is only on the engine.
      const ks = done.stores.kernels;
      const imagePath = ks.clientPath(rec.image) ?? null;
      if (g.json) printJson({ ...rec, imagePath, files: done.stores.mode, seconds: done.seconds, reproducible });
      else {
        process.stdout.write(`${rec.release}  ${imagePath ?? `${rec.image} (on the engine)`}\n  Image sha256 ${rec.imageSha256}\n`);
        if (reproducible !== null) process.stdout.write(`  rebuilt: ${reproducible ? 'identical Image (reproducible)' : `DIFFERENT Image (was ${done.previousSha256})`}\n`);
      }
      if (reproducible === false) process.exitCode = ExitCode.kernelBuildFailed;
    });
}
