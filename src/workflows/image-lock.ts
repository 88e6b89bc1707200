/**
 * `m5dev image lock`: resolve the toolchain's packages to the newest versions the mirror (or the
 * lock's snapshot archive) serves, on the engine's base image, and rewrite the lock's section for
 * that architecture. apt does the resolving in a throwaway container of the base image: what
 * `apt-get install -s` would install there, at which versions, is what the build installs.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ListrTask } from 'listr2';
import { ensureBaseImage } from '../docker/images.js';
import { LOCK_FILE, diffPackages, formatLock, ownRepoDigest, parseSimulation, snapshotSources, type PackageChange, type ToolchainLock } from '../docker/toolchain-lock.js';
import { ImageBuildError } from '../errors.js';
import { engineTask, readContextLock, type ConnectedEngine, type ImageCtx } from './image-build.js';
import type { HomeLayout } from '../paths.js';
import { scriptCommand } from '../scripts.js';

export interface LockCtx {
  image: ImageCtx;
  home: HomeLayout;
  engine?: ConnectedEngine;
  /** A snapshot archive URL to resolve against and record ('-' clears it; undefined keeps the lock's). */
  snapshot?: string;
  arch?: string;
  baseId?: string;
  repoDigest?: string;
  changes?: PackageChange[];
  lockPath?: string;
  /** The lock's snapshot archive, when it did not answer (the lock is then resolved against the mirror and drops it). */
  snapshotDropped?: string;
}

export function lockTasks(): ListrTask<LockCtx>[] {
  return [
    engineTask<LockCtx>(),
    {
      title: 'Base image',
      task: async (ctx, task) => {
        const docker = ctx.engine!.engine.docker;
        ctx.baseId = await ensureBaseImage(docker, ctx.image.request.baseImage);
        const info = await docker.getImage(ctx.image.request.baseImage).inspect();
        ctx.repoDigest = ownRepoDigest(ctx.image.request.baseImage, info.RepoDigests);
        task.title = `Base image ${ctx.image.request.baseImage} (${ctx.baseId.slice(7, 19)}${ctx.repoDigest ? `, ${ctx.repoDigest.slice(0, 19)}…` : ', no registry digest'})`;
      },
    },
    {
      title: 'Resolve the packages with apt on the base image',
      task: async (ctx, task) => {
        ctx.lockPath = join(ctx.image.request.contextDir, LOCK_FILE);
        const old: ToolchainLock = readContextLock(ctx.image.request.contextDir) ?? { bases: new Map(), packages: new Map() };
        let snapshot = ctx.snapshot === undefined ? old.snapshot : ctx.snapshot === '-' ? undefined : ctx.snapshot;
        const script = readFileSync(join(ctx.image.request.contextDir, 'm5dev-tools', 'm5dev-toolchain-packages'));
        // The same apt sources as the image build writes: read from its install script, not copied here.
        const sources = snapshotSources(readFileSync(join(ctx.image.request.contextDir, 'm5dev-tools', 'm5dev-install-locked'), 'utf8'));
        const out = await ctx.engine!.engine.runTool({
          image: ctx.image.request.baseImage,
          cmd: scriptCommand('resolvePackages', [snapshot ?? '', '/tmp/m5dev-snapshot-sources', '/tmp/m5dev-toolchain-packages']),
          binds: [],
          home: ctx.home.root,
          network: true,
          description: 'Resolving the toolchain packages (apt-get install -s)',
          before: (box) =>
            box.putFiles('/tmp', [
              { name: 'm5dev-toolchain-packages', data: script, mode: 0o755 },
              { name: 'm5dev-snapshot-sources', data: Buffer.from(`${sources.join('\n')}\n`), mode: 0o644 },
            ]),
          onLine: (line) => {
            task.output = line;
          },
        });
        if (snapshot && /^SNAPSHOT unreachable$/m.test(out)) {
          if (ctx.snapshot === snapshot) throw new ImageBuildError(`the snapshot archive ${snapshot} does not answer from the engine`, out.slice(-2000), 'Check the URL (e.g. https://snapshot.debian.org/archive/debian/20261125T000000Z) and that the engine reaches it; without --snapshot the lock is resolved against the mirror.');
          ctx.snapshotDropped = snapshot;
          snapshot = undefined;
        }
        const arch = /^ARCH (\S+)$/m.exec(out)?.[1];
        if (!arch) throw new ImageBuildError('apt on the base image did not report its architecture', out.slice(-2000));
        const resolved = parseSimulation(out);
        if (resolved.size === 0) throw new ImageBuildError('apt on the base image resolved no packages to install', out.slice(-2000));
        ctx.arch = arch;
        ctx.changes = diffPackages(old.packages.get(arch), resolved);
        const next: ToolchainLock = { snapshot, bases: new Map(old.bases), packages: new Map(old.packages) };
        next.bases.set(arch, { ref: ctx.image.request.baseImage, id: ctx.baseId!, repoDigest: ctx.repoDigest });
        next.packages.set(arch, resolved);
        writeFileSync(`${ctx.lockPath}.tmp`, formatLock(next));
        renameSync(`${ctx.lockPath}.tmp`, ctx.lockPath);
        task.title = `Resolved ${resolved.size} packages for ${arch}: ${ctx.changes.length} changed${ctx.snapshotDropped ? ` (the snapshot archive ${ctx.snapshotDropped} does not answer: resolved against the mirror, and the lock names no snapshot)` : ''}`;
      },
    },
  ];
}
