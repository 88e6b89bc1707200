/**
 * `m5dev kernel build`: fetch the pinned tarball, extract it once, configure from the repo's
 * fragment and cross-compile in the toolchain container, all in the engine's kernel storage
 * (mounted at /kernels). Every step is cached by content: the source by tarball digest, the build
 * by (version, tarball, config, toolchain image). On an engine that cannot see this machine's files,
 * a finished build of the same key in this machine's own kernel cache is copied there instead of
 * being built again.
 */
import { cpus } from 'node:os';
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { toolchainIdentity, type Toolchain } from './image-build.js';
import type { HomeLayout } from '../paths.js';
import { BlobStore } from '../download/store.js';
import { fetchVerified } from '../download/downloader.js';
import { KernelBuildError } from '../errors.js';
import { onCleanup, type CleanupScope } from '../cleanup.js';
import { makefileVersion, type KernelSource } from '../kernel/source.js';
import { checkConfig, describeMismatches, parseConfig } from '../kernel/config-fragment.js';
import { compileArgs, configureArgs, containerEnv, kernelBuildKey, kernelPaths } from '../kernel/build-spec.js';
import { IMAGE_IN_BUILD, KERNELS_MOUNT, RECORD_IN_BUILD, asideName, buildName, fragmentName, inContainer, markLatest, publishBuild, readBuildRecord, srcName, type KernelRecord } from '../kernel/cache.js';
import { CACHE_IN_CONTAINER } from '../vm/instance.js';
import { homeStores, type HomeStores } from '../engine/instance-storage.js';
import type { Storage } from '../engine/storage.js';
import { scriptCommand } from '../scripts.js';
import { guestTreeCommand, hasGuestTree } from '../kernel/guest-tree.js';
import { writer } from '../docker/containers.js';
import { progressLine, throttledLines } from './progress.js';
import { stepUnless, type Reporter } from './report.js';

export interface KernelRequest {
  home: HomeLayout;
  source: KernelSource;
  fragmentPath: string;
  jobs: number;
  /** Rebuild even when a finished build exists (to check reproducibility). */
  rebuild: boolean;
}

export function kernelRequest(home: HomeLayout, source: KernelSource, fragmentPath: string, opts: { jobs?: number; rebuild?: boolean }): KernelRequest {
  return { home, source, fragmentPath, jobs: opts.jobs ?? cpus().length, rebuild: opts.rebuild ?? false };
}

/** The engine's blob and kernel storages, and who owns what tools write there (kernel build, module). */
export interface ToolStores {
  toolchain: Toolchain;
  stores: HomeStores;
  owner?: { uid: number; gid: number };
}

export function openToolStores(report: Reporter, toolchain: Toolchain, home: HomeLayout): Promise<ToolStores> {
  return report.step('Kernel cache on the engine', async (s) => {
    const stores = await homeStores(toolchain.engine, home, toolchain.tag);
    s.title(stores.mode === 'shared' ? `Kernel cache in ${home.kernels}` : 'Kernel cache in a volume on the engine');
    return { toolchain, stores, owner: toolchain.engine.owner(stores.mode, toolchain.info.rootless) };
  });
}

/** What the build made: its record, the engine's stores, and for a --rebuild the Image it replaced. */
export interface KernelBuilt {
  record: KernelRecord;
  stores: HomeStores;
  previousSha256?: string;
  /** Seconds the compile took (0 when cached or copied). */
  seconds: number;
}

/**
 * A tool run with the kernel storage at /kernels (and the blob cache at /cache, read-only), as the
 * user whose files they are, with no capability and no network (ToolRun.confined): the kernel's
 * own Makefiles and scripts run here, and what they write is the user's, never root's.
 */
function tool(ts: ToolStores, home: HomeLayout, description: string, cmd: string[], onLine?: (l: string) => void): Promise<string> {
  const { blobs, kernels } = ts.stores;
  return ts.toolchain.engine.runTool({
    image: ts.toolchain.tag,
    cmd,
    binds: [kernels.bind(KERNELS_MOUNT), blobs.bind(CACHE_IN_CONTAINER, true)],
    env: containerEnv(),
    home: home.root,
    confined: writer(ts.owner),
    description,
    onLine,
    failure: (message, out) => new KernelBuildError(message, out),
  });
}

/** What the build inputs found: the key, a finished build (or this machine's), the source tree. */
interface Inputs {
  key: string;
  fragmentSha256: string;
  existing?: KernelRecord;
  localBuild?: KernelRecord;
  previousSha256?: string;
  extracted: boolean;
  /** Drops the put-back of the build set aside (--rebuild), once its replacement is complete. */
  keepRebuild?: () => Promise<void>;
}

/**
 * `m5dev kernel build` as one phase: the toolchain's stores, the inputs and their key, then each
 * step skipped with a reason when what it makes is there (a finished build skips them all).
 * `scope`: a --rebuild cut short puts the finished build it set aside back.
 */
export async function buildKernel(report: Reporter, toolchain: Toolchain, req: KernelRequest, scope: CleanupScope): Promise<KernelBuilt> {
  const { source, home } = req;
  const ts = await openToolStores(report, toolchain, home);
  const ks = ts.stores.kernels;
  const store = new BlobStore(home);
  const inputs = await report.step('Build inputs', async (s): Promise<Inputs> => {
    const fragmentSha256 = createHash('sha256').update(readFileSync(req.fragmentPath)).digest('hex');
    const compiler = await toolchain.engine.toolchainCompiler(toolchain.tag, toolchain.imageId, home.root);
    const key = kernelBuildKey({ version: source.version, tarballSha256: source.sha256, fragmentSha256, toolchainTag: toolchainIdentity(toolchain), compiler });
    const found = (await readBuildRecord(ks, key)) ?? (await restoreAside(ks, key));
    const inputs: Inputs = { key, fragmentSha256, extracted: (await ks.stat([`${srcName(source.sha256)}/Makefile`])).size > 0 };
    if (req.rebuild) {
      // From scratch: neither the finished tree nor an interrupted one is reused. The finished
      // one is set aside (a rename), not removed, until its replacement is complete.
      inputs.previousSha256 = found?.imageSha256;
      if (found) inputs.keepRebuild = await setAside(scope, ks, key);
      else await ks.removeTree(buildName(key));
    } else if (found) {
      inputs.existing = found;
      await markLatest(ks, found);
    } else if (!ks.clientPath(buildName(key))) {
      // The engine keeps its own kernel cache: a build of these inputs on this machine is copied in, not redone.
      const local = join(home.kernels, buildName(key), RECORD_IN_BUILD);
      if (existsSync(local)) inputs.localBuild = JSON.parse(readFileSync(local, 'utf8')) as KernelRecord;
    }
    s.title(`Build inputs: linux-${source.version}, config ${fragmentSha256.slice(0, 12)}…, key ${key}`);
    return inputs;
  });
  const { key, existing, localBuild } = inputs;
  const built = existing ? `cached: ${existing.release} built from these inputs (${existing.key})` : false;
  const sourceThere = built || (inputs.extracted && 'cached: source tree already extracted on the engine');
  await stepUnless(report, 'Download the kernel source', sourceThere || (store.has(source.sha256) && `cached: linux-${source.version} tarball verified in the store`), async (s) => {
    const abort = new AbortController();
    const undo = onCleanup('abort kernel download', () => abort.abort());
    try {
      await fetchVerified({ url: source.url, sha256: source.sha256, store, signal: abort.signal, onProgress: (p) => s.output(progressLine(p.received, p.total, p.attempt)) });
    } finally {
      undo();
    }
    s.title(`Downloaded and verified linux-${source.version} (sha256 ${source.sha256.slice(0, 12)}…)`);
  });
  await stepUnless(report, 'Copy the kernel source to the engine', sourceThere || (ts.stores.blobs.clientPath(source.sha256) !== undefined && "the engine reads the client's blob cache"), async (s) => {
    const blobs = ts.stores.blobs;
    if ((await blobs.stat([source.sha256])).size === 0) await blobs.importFile(store.path(source.sha256), source.sha256, source.sha256);
    s.title(`Kernel source on the engine (verified there, sha256 ${source.sha256.slice(0, 12)}…)`);
  });
  await stepUnless(report, 'Extract the source', built || (inputs.extracted && 'cached: source tree already extracted'), async () => {
    // Into a partial tree renamed whole: a cut-short extraction is never taken for a source tree.
    // A failed extraction (a full disk) gives its space back; one cut short by Ctrl-C is removed by the next run.
    await tool(ts, home, 'Extracting the kernel source', scriptCommand('extractSource', [`${CACHE_IN_CONTAINER}/${source.sha256}`, inContainer(srcName(source.sha256))])).catch(async (e: unknown) => {
      await ks.removeTree(`${srcName(source.sha256)}.partial`);
      throw e;
    });
  });
  await stepUnless(report, 'Check the source release', built, async (s) => {
    const makefile = await ks.read(`${srcName(source.sha256)}/Makefile`);
    const found = makefile ? makefileVersion(makefile.toString('utf8')) : undefined;
    if (found !== source.version) {
      throw new KernelBuildError(
        `the tarball is linux-${found ?? '?'}, not linux-${source.version}`,
        `${source.url}`,
        `A module must be built against the exact kernel it runs: pass --version ${found ?? '<release>'} for this tarball, or point --kernel-url at linux-${source.version}.`,
      );
    }
    s.title(`Source is linux-${found}`);
  });
  const copied = await stepUnless(report, "Copy this machine's finished build to the engine", built || (!localBuild && 'no finished build of these inputs here'), async (s) => {
    if (!localBuild) throw new Error('no finished build to copy'); // the step is skipped then
    const rec = localBuild;
    const name = buildName(key);
    await ks.importTree(join(home.kernels, name), name);
    // Verified where it landed: the Image must be the one the build recorded.
    const sha = await ks.sha256(rec.image);
    if (sha !== rec.imageSha256) {
      await ks.removeTree(name);
      throw new KernelBuildError(`the copied Image has sha256 ${sha}, not ${rec.imageSha256}`, '', 'Run `m5dev kernel build --rebuild` to build it on this engine.');
    }
    await markLatest(ks, rec);
    s.title(`Copied the build of ${rec.release} to the engine (Image verified there)`);
    return rec;
  });
  const compiled = existing ?? copied;
  let seconds = 0;
  let record: KernelRecord;
  if (compiled) {
    await report.skipped('Configure (allnoconfig + fragment)', built || `copied: ${compiled.release} was built from these inputs on this machine`);
    await report.skipped('Cross-compile Image and modules', built || `copied: ${compiled.release} was built from these inputs on this machine`);
    record = compiled;
  } else {
    const paths = kernelPaths(source.sha256, key);
    const build = buildName(key);
    await report.step('Configure (allnoconfig + fragment)', async (s) => {
      await ks.write([{ name: fragmentName(inputs.fragmentSha256), data: readFileSync(req.fragmentPath) }]);
      await tool(ts, home, 'Configuring the kernel', scriptCommand('kernelMake', [paths.build, ...configureArgs(paths, inContainer(fragmentName(inputs.fragmentSha256)))]));
      const config = await ks.read(`${build}/.config`);
      const bad = checkConfig(parseConfig(readFileSync(req.fragmentPath, 'utf8')), parseConfig(config?.toString('utf8') ?? ''));
      if (bad.length) {
        throw new KernelBuildError(
          `${bad.length} option(s) of ${req.fragmentPath} did not survive into .config`,
          describeMismatches(bad),
          'Kconfig drops a symbol whose dependencies are off or that this release lacks: add the dependency to the fragment or remove the line.',
        );
      }
      s.title('Configured: every fragment option is in .config');
    });
    record = await report.step('Cross-compile Image and modules', async (s) => {
      const started = Date.now();
      // A failed or interrupted build keeps its tree (no record yet): the next run continues incrementally.
      await tool(ts, home, 'Building the kernel', scriptCommand('kernelMake', [paths.build, ...compileArgs(paths, req.jobs)]), throttledLines((line) => s.output(line)));
      seconds = (Date.now() - started) / 1000;
      const image = `${build}/${IMAGE_IN_BUILD}`;
      const rec: KernelRecord = {
        version: source.version,
        release: ((await ks.read(`${build}/include/config/kernel.release`))?.toString('utf8') ?? '').trim(),
        key,
        src: srcName(source.sha256),
        build,
        image,
        imageSha256: await ks.sha256(image),
        toolchainTag: toolchainIdentity(toolchain),
        configSha256: await ks.sha256(`${build}/.config`),
      };
      await publishBuild(ks, rec);
      await inputs.keepRebuild?.();
      s.title(`Built ${rec.release} in ${seconds.toFixed(0)} s (Image sha256 ${rec.imageSha256.slice(0, 12)}…)`);
      return rec;
    });
  }
  // Also for a build made before this step existed: it needs only the finished tree.
  await report.step('Guest module tree (modules, modules.dep, a build tree with arm64 host programs)', async (s) => {
    if (await hasGuestTree(ks, record)) return s.skip(`cached: /lib/modules/${record.release} and its build tree for the guest`);
    await tool(ts, home, 'Making the guest module tree', guestTreeCommand(record));
    s.title(`Guest module tree: /lib/modules/${record.release}, build → /usr/src/linux-headers-${record.release} (host programs for arm64)`);
  });
  return { record, stores: ts.stores, previousSha256: inputs.previousSha256, seconds };
}

/**
 * `--rebuild`: the finished build moves aside. Should this build fail or be cut short (Ctrl-C,
 * SIGTERM), the operation's scope puts it back; once the new build is published, it is removed.
 */
async function setAside(scope: CleanupScope, ks: Storage, key: string): Promise<() => Promise<void>> {
  await ks.removeTree(asideName(key));
  await ks.syncRename([[buildName(key), asideName(key)]]);
  const drop = scope.defer('put the finished kernel build back', () => putBack(ks, key));
  return async () => {
    drop();
    await ks.removeTree(asideName(key));
  };
}

/** The build set aside back in its place, over whatever the rebuild left there. */
async function putBack(ks: Storage, key: string): Promise<void> {
  await ks.removeTree(buildName(key));
  await ks.syncRename([[asideName(key), buildName(key)]]);
}

/** A rebuild killed outright (kill -9) left the last finished build aside: it comes back. */
async function restoreAside(ks: Storage, key: string): Promise<KernelRecord | undefined> {
  if ((await ks.stat([`${asideName(key)}/${RECORD_IN_BUILD}`])).size === 0) return undefined;
  await putBack(ks, key);
  return readBuildRecord(ks, key);
}

