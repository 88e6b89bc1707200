/** `m5dev image build` (build or reuse the toolchain image) and `m5dev image lock` (re-resolve its package lock). */
import type { Command } from 'commander';
import type { Toolchain } from '../../workflows/image-build.js';
import { listrReporter, printJson } from '../ui.js';
import { DOCKER_CONTEXT } from '../../assets.js';
import { globalOpts, locked } from '../options.js';
import { DEFAULTS } from '../../config.js';
import { layout } from '../../paths.js';
import { UsageError } from '../../errors.js';
import { progressLine } from '../../workflows/progress.js';
import type { Step } from '../../workflows/report.js';

export function registerImage(program: Command): void {
  const image = program.command('image').description('manage the toolchain image (QEMU, EFI firmware, cloud-image-utils, cross gcc)');
  image
    .command('build')
    .description('build the toolchain image; a no-op when docker/ (with its package lock) is unchanged')
    .option('--base-image <ref>', 'base image (build arg BASE_IMAGE)', DEFAULTS.baseImage)
    .option('--context <dir>', 'build context directory (default: the packaged docker/)')
    .option('--strict-lock', 'fail (exit 4, naming each package) when a locked version is no longer served or no longer installs beside the base, instead of installing the served one; also M5DEV_STRICT_LOCK=1')
    .action(async (opts: { baseImage: string; context?: string; strictLock?: boolean }, cmd: Command) => {
      const g = globalOpts(cmd);
      const { ensureToolchain, toolchainRequest, imageLockDrift } = await import('../../workflows/image-build.js');
      const { describeDrift } = await import('../../docker/toolchain-lock.js');
      const request = toolchainRequest(opts.baseImage, opts.context);
      if (opts.strictLock) request.strict = true;
      const tc = await ensureToolchain(listrReporter(g), request);
      // A cached image says what its build installed in place of the lock's versions.
      const drift = tc.drift ?? (tc.request.given ? [] : await imageLockDrift(tc.engine, tc.tag));
      const result = { tag: tc.tag, imageId: tc.imageId, cached: tc.cached, contextHash: tc.hash, strict: request.strict, drift };
      if (drift.length && !g.quiet) process.stderr.write(`m5dev: notice: ${tc.tag} differs from the toolchain lock: ${describeDrift(drift)} (locked versions the mirror no longer serves, or that no longer install beside this base)\n`);
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
      const [{ lockToolchain }, { describeChange }] = await Promise.all([import('../../workflows/image-lock.js'), import('../../docker/toolchain-lock.js')]);
      const req = { contextDir: opts.context ?? DOCKER_CONTEXT, baseImage: opts.baseImage, home: layout(), snapshot: opts.snapshot };
      const done = await locked(cmd, 'toolchain-lock', 'the toolchain lock', () => lockToolchain(listrReporter(g), req));
      const changes = done.changes;
      if (g.json) printJson({ lock: done.lockPath, arch: done.arch, changes });
      else {
        for (const c of changes) process.stdout.write(`${describeChange(c)}\n`);
        process.stdout.write(`${done.lockPath}: ${changes.length ? `${changes.length} package${changes.length === 1 ? '' : 's'} changed for ${done.arch}` : `unchanged for ${done.arch}`}\n`);
      }
    });

  image
    .command('save <file>')
    .description('write the toolchain image to an archive (docker save format) and print its SHA-256, for `image load` on another engine')
    .option('--base-image <ref>', 'base image', DEFAULTS.baseImage)
    .action(async (file: string, opts: { baseImage: string }, cmd: Command) => {
      const g = globalOpts(cmd);
      const { toolchain: img, made: saved } = await onToolchain(cmd, opts.baseImage, 'Save the toolchain image', async (i, task) => {
        const s = await i.engine.images.save(i.tag, file, (p) => task.output(progressLine(p.bytes, p.total, 1)));
        task.title(`Saved ${i.tag} to ${file} (${(s.bytes / 2 ** 20).toFixed(0)} MiB)`);
        return s;
      });
      const result = { file, sha256: saved.sha256, bytes: saved.bytes, tag: img.tag, imageId: img.imageId };
      if (g.json) printJson(result);
      else process.stdout.write(`${file}  sha256 ${result.sha256}  ${result.tag} (${result.imageId})\nload it with: m5dev image load ${file} --sha256 ${result.sha256}\n`);
    });

  image
    .command('load <file>')
    .description('load a toolchain image archive into the engine (verified against --sha256 before a byte is loaded)')
    .option('--sha256 <hex>', 'the archive\'s SHA-256, as `image save` printed it')
    .action(async (file: string, opts: { sha256?: string }, cmd: Command) => {
      const g = globalOpts(cmd);
      if (opts.sha256 && !/^[0-9a-f]{64}$/.test(opts.sha256)) throw new UsageError('--sha256 takes 64 hex digits');
      const { connectEngine } = await import('../../engine/engine.js');
      const engine = await connectEngine();
      const tags = await engine.images.load(file, opts.sha256);
      const ids = await Promise.all(tags.map(async (t) => (await engine.images.id(t)) ?? ''));
      if (g.json) printJson({ file, verified: Boolean(opts.sha256), images: tags.map((tag, i) => ({ tag, imageId: ids[i] })) });
      else for (const [i, t] of tags.entries()) process.stdout.write(`loaded ${t} (${ids[i]})${opts.sha256 ? ', archive verified' : ''}\n`);
    });

  image
    .command('push <ref>')
    .description('push the toolchain image to a registry as REF and print REF@sha256:… for `image pull` / `--toolchain`')
    .option('--base-image <ref>', 'base image', DEFAULTS.baseImage)
    .action(async (ref: string, opts: { baseImage: string }, cmd: Command) => {
      const g = globalOpts(cmd);
      let pinned = '';
      await onToolchain(cmd, opts.baseImage, `Push to ${ref}`, async (i, task) => {
        pinned = await i.engine.images.push(i.tag, ref);
        task.title(`Pushed ${pinned}`);
      });
      if (g.json) printJson({ ref: pinned });
      else process.stdout.write(`${pinned}\n`);
    });

  image
    .command('pull <ref>')
    .description('pull a toolchain image by digest (REF@sha256:…) and tag it as the toolchain it holds')
    .action(async (ref: string, _opts: unknown, cmd: Command) => {
      const g = globalOpts(cmd);
      const { connectEngine } = await import('../../engine/engine.js');
      const engine = await connectEngine();
      const { tag, id } = await engine.images.pull(ref);
      if (g.json) printJson({ ref, tag, imageId: id });
      else process.stdout.write(`pulled ${ref}\n  as ${tag} (${id})\n`);
    });
}

/** The toolchain image (found, or built as `image build` would), then one more step with it. */
async function onToolchain<T>(cmd: Command, baseImage: string, title: string, step: (tc: Toolchain, s: Step) => Promise<T>): Promise<{ toolchain: Toolchain; made: T }> {
  const { ensureToolchain, toolchainRequest } = await import('../../workflows/image-build.js');
  const report = listrReporter(globalOpts(cmd));
  const tc = await ensureToolchain(report, toolchainRequest(baseImage));
  return { toolchain: tc, made: await report.step(title, (s) => step(tc, s)) };
}
