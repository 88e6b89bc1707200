/**
 * The kernel cache, kept in the engine's kernel storage (the client's $M5DEV_HOME/kernels when the
 * engine shares it, a volume otherwise) and mounted at /kernels in every tool container, so a build
 * has the same paths on every engine:
 *   src/<tarball sha256>/        extracted source (shared by every config)
 *   build/<key>/                 an out-of-tree build; complete once it holds m5dev-kernel.json
 *   build/<key>.previous/        the finished build a --rebuild replaces, until the new one is complete
 *   fragments/<sha256>.config    the Kconfig fragments builds were configured with
 *   <version>.latest.json        the last successful build of a version (what `up --kernel` boots)
 * External module builds are the client's: $M5DEV_HOME/kernels/modules/<key>-<src hash>/.
 */
import { join } from 'node:path';
import type { HomeLayout } from '../paths.js';
import { UsageError } from '../errors.js';
import type { Storage } from '../engine/storage.js';

/** Where tool containers and the VM container mount the kernel storage. */
export const KERNELS_MOUNT = '/kernels';

export interface KernelRecord {
  version: string;
  /** `uname -r` of the built kernel. */
  release: string;
  key: string;
  /** Names inside the kernel storage: the source tree, the build tree, the Image. */
  src: string;
  build: string;
  image: string;
  imageSha256: string;
  toolchainTag: string;
  configSha256: string;
}

export const srcName = (tarballSha256: string): string => `src/${tarballSha256}`;
export const buildName = (key: string): string => `build/${key}`;
/** Where `kernel build --rebuild` keeps the finished build of a key until its replacement is complete. */
export const asideName = (key: string): string => `build/${key}.previous`;
export const fragmentName = (sha256: string): string => `fragments/${sha256}.config`;
export const IMAGE_IN_BUILD = 'arch/arm64/boot/Image';
export const RECORD_IN_BUILD = 'm5dev-kernel.json';
const latestName = (version: string) => `${version}.latest.json`;

/** A name of the kernel storage as tool and VM containers see it. */
export const inContainer = (name: string): string => `${KERNELS_MOUNT}/${name}`;

export function moduleBuildDir(home: HomeLayout, kernelKey: string, srcHash: string): string {
  return join(home.kernels, 'modules', `${kernelKey}-${srcHash.slice(0, 16)}`);
}

/** A record, if the file exists, is one of this format and the Image it names is still there. */
async function readRecord(ks: Storage, name: string): Promise<KernelRecord | undefined> {
  const raw = await ks.read(name);
  if (!raw) return undefined;
  let rec: KernelRecord;
  try {
    rec = JSON.parse(raw.toString('utf8')) as KernelRecord;
  } catch {
    return undefined;
  }
  if (typeof rec.image !== 'string' || typeof rec.build !== 'string') return undefined; // an older m5dev's record
  return (await ks.stat([rec.image])).has(rec.image) ? rec : undefined;
}

/** A finished build's record, if its build tree is complete. */
export function readBuildRecord(ks: Storage, key: string): Promise<KernelRecord | undefined> {
  return readRecord(ks, `${buildName(key)}/${RECORD_IN_BUILD}`);
}

/** Commit a build: its record inside the build tree (the tree is complete from here), then `<version>.latest`. */
export async function publishBuild(ks: Storage, rec: KernelRecord): Promise<void> {
  const name = `${rec.build}/${RECORD_IN_BUILD}`;
  await ks.write([{ name: `${name}.tmp`, data: `${JSON.stringify(rec, null, 2)}\n` }]);
  await ks.syncRename([[`${name}.tmp`, name]]);
  await markLatest(ks, rec);
}

export async function markLatest(ks: Storage, rec: KernelRecord): Promise<void> {
  const name = latestName(rec.version);
  await ks.write([{ name: `${name}.tmp`, data: `${JSON.stringify(rec, null, 2)}\n` }]);
  await ks.syncRename([[`${name}.tmp`, name]]);
}

export function readLatest(ks: Storage, version: string): Promise<KernelRecord | undefined> {
  return readRecord(ks, latestName(version));
}

export async function requireKernel(ks: Storage, version: string): Promise<KernelRecord> {
  const rec = await readLatest(ks, version);
  if (!rec) throw new UsageError(`no built kernel ${version} on this engine`, `Build it first: \`m5dev kernel build --version ${version}\` (add --kernel-url/--kernel-sha256 for a mirror).`);
  return rec;
}
