/** `m5dev doctor [--json]`: can this machine and its Docker engine run m5dev, and if not, what to do. */
import type { Command } from 'commander';
import { printJson } from '../ui.js';
import { globalOpts } from '../options.js';
import { DEFAULTS } from '../../config.js';
import { ExitCode } from '../../errors.js';
import { layout } from '../../paths.js';
import type { Check } from '../../engine/doctor.js';
import { session } from '../../session.js';

const MARK: Record<Check['status'], string> = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' };

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check the Docker engine (how it is reached, OS/arch, rootless, KVM, files), images, disk and ssh; each failure says what to do')
    .option('--base-image <ref>', 'toolchain base image', DEFAULTS.baseImage)
    .action(async (opts: { baseImage: string }, cmd: Command) => {
      const [{ doctor }, { connectEngine }, { findOnPath }, { toolchainTagOn }] = await Promise.all([
        import('../../engine/doctor.js'),
        import('../../engine/engine.js'),
        import('../../ssh/client.js'),
        import('../../workflows/image-build.js'),
      ]);
      const res = await doctor({
        connect: connectEngine,
        home: layout().root,
        baseImage: opts.baseImage,
        // A given toolchain (--toolchain, M5DEV_TOOLCHAIN) is the one to look for.
        toolchainTag: async (engine) => session().toolchain ?? (await toolchainTagOn(engine, opts.baseImage)),
        hostSsh: findOnPath('ssh'),
      });
      const ok = res.checks.every((c) => c.status !== 'fail');
      if (globalOpts(cmd).json) printJson({ ok, engine: res.engine ?? null, checks: res.checks });
      else {
        for (const c of res.checks) {
          process.stdout.write(`${MARK[c.status]} ${c.name.padEnd(16)} ${c.detail}\n`);
          if (c.hint && c.status !== 'ok') process.stdout.write(`     ${''.padEnd(16)} hint: ${c.hint}\n`);
        }
      }
      if (!ok) process.exitCode = ExitCode.doctorFailed;
    });
}
