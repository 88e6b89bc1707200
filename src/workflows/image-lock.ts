/**
 * `m5dev image lock`: resolve the toolchain's packages to the newest versions the mirror (or the
 * lock's snapshot archive) serves, on the engine's base image, and rewrite the lock's section for
 * that architecture. apt does the resolving in a throwaway container of the base image: what
 * `apt-get install -s` would install there, at which versions, is what the build installs.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LOCK_FILE, diffPackages, formatLock, ownRepoDigest, parseSimulation, snapshotSources, type PackageChange, type ToolchainLock } from '../docker/toolchain-lock.js';
import { ImageBuildError } from '../errors.js';
import { connectToEngine, readContextLock } from './image-build.js';
import type { Reporter } from './report.js';
import type { HomeLayout } from '../paths.js';
import { scriptCommand } from '../scripts.js';

export interface LockRequest {
  contextDir: string;
  baseImage: string;
  home: HomeLayout;
  /** A snapshot archive URL to resolve against and record ('-' clears it; undefined keeps the lock's). */
  snapshot?: string;
}

export interface LockResult {
  lockPath: string;
  arch: string;
  changes: PackageChange[];
  /** The lock's snapshot archive, when it did not answer (the lock is then resolved against the mirror and drops it). */
  snapshotDropped?: string;
}

/** Resolve the toolchain's packages on the base image and rewrite the lock's section for its architecture. */
export async function lockToolchain(report: Reporter, req: LockRequest): Promise<LockResult> {
  const { engine } = await connectToEngine(report);
  const base = await report.step('Base image', async (s) => {
    const id = await engine.images.ensureBase(req.baseImage);
    const repoDigest = ownRepoDigest(req.baseImage, await engine.images.repoDigests(req.baseImage));
    s.title(`Base image ${req.baseImage} (${id.slice(7, 19)}${repoDigest ? `, ${repoDigest.slice(0, 19)}…` : ', no registry digest'})`);
    return { id, repoDigest };
  });
  return report.step('Resolve the packages with apt on the base image', async (s) => {
    const lockPath = join(req.contextDir, LOCK_FILE);
    const old: ToolchainLock = readContextLock(req.contextDir) ?? { bases: new Map(), packages: new Map() };
    let snapshot = req.snapshot === undefined ? old.snapshot : req.snapshot === '-' ? undefined : req.snapshot;
    const script = readFileSync(join(req.contextDir, 'm5dev-tools', 'm5dev-toolchain-packages'));
    // The same apt sources as the image build writes: read from its install script, not copied here.
    const sources = snapshotSources(readFileSync(join(req.contextDir, 'm5dev-tools', 'm5dev-install-locked'), 'utf8'));
    const out = await engine.runTool({
      image: req.baseImage,
      cmd: scriptCommand('resolvePackages', [snapshot ?? '', '/tmp/m5dev-snapshot-sources', '/tmp/m5dev-toolchain-packages']),
      binds: [],
      home: req.home.root,
      network: true,
      description: 'Resolving the toolchain packages (apt-get install -s)',
      before: (box) =>
        box.putFiles('/tmp', [
          { name: 'm5dev-toolchain-packages', data: script, mode: 0o755 },
          { name: 'm5dev-snapshot-sources', data: Buffer.from(`${sources.join('\n')}\n`), mode: 0o644 },
        ]),
      onLine: (line) => s.output(line),
    });
    let snapshotDropped: string | undefined;
    if (snapshot && /^SNAPSHOT unreachable$/m.test(out)) {
      if (req.snapshot === snapshot) throw new ImageBuildError(`the snapshot archive ${snapshot} does not answer from the engine`, out.slice(-2000), 'Check the URL (e.g. https://snapshot.debian.org/archive/debian/20261125T000000Z) and that the engine reaches it; without --snapshot the lock is resolved against the mirror.');
      snapshotDropped = snapshot;
      snapshot = undefined;
    }
    const arch = /^ARCH (\S+)$/m.exec(out)?.[1];
    if (!arch) throw new ImageBuildError('apt on the base image did not report its architecture', out.slice(-2000));
    const resolved = parseSimulation(out);
    if (resolved.size === 0) throw new ImageBuildError('apt on the base image resolved no packages to install', out.slice(-2000));
    const changes = diffPackages(old.packages.get(arch), resolved);
    const next: ToolchainLock = { snapshot, bases: new Map(old.bases), packages: new Map(old.packages) };
    next.bases.set(arch, { ref: req.baseImage, id: base.id, repoDigest: base.repoDigest });
    next.packages.set(arch, resolved);
    writeFileSync(`${lockPath}.tmp`, formatLock(next));
    renameSync(`${lockPath}.tmp`, lockPath);
    s.title(`Resolved ${resolved.size} packages for ${arch}: ${changes.length} changed${snapshotDropped ? ` (the snapshot archive ${snapshotDropped} does not answer: resolved against the mirror, and the lock names no snapshot)` : ''}`);
    return { lockPath, arch, changes, snapshotDropped };
  });
}
