/**
 * Where kernel artefacts live under M5DEV_HOME/kernels:
 *   src/<tarball sha256>/        extracted source (shared by every config)
 *   build/<key>/                 a finished out-of-tree build (`<key>.partial` while in progress)
 *   modules/<key>-<src hash>/    external module builds against that tree
 *   <version>.latest.json        the last successful build of a version (what `up --kernel` boots)
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HomeLayout } from '../paths.js';
import { UsageError } from '../errors.js';

export interface KernelRecord {
  version: string;
  /** `uname -r` of the built kernel. */
  release: string;
  key: string;
  imagePath: string;
  imageSha256: string;
  srcDir: string;
  buildDir: string;
  toolchainTag: string;
  configSha256: string;
}

export function kernelSrcDir(home: HomeLayout, tarballSha256: string): string {
  return join(home.kernels, 'src', tarballSha256);
}

export function kernelBuildDir(home: HomeLayout, key: string): string {
  return join(home.kernels, 'build', key);
}

export function moduleBuildDir(home: HomeLayout, kernelKey: string, srcHash: string): string {
  return join(home.kernels, 'modules', `${kernelKey}-${srcHash.slice(0, 16)}`);
}

export const IMAGE_IN_BUILD = join('arch', 'arm64', 'boot', 'Image');
export const RECORD_IN_BUILD = 'm5dev-kernel.json';

function latestFile(home: HomeLayout, version: string): string {
  return join(home.kernels, `${version}.latest.json`);
}

/** A finished build's record, if its build dir is complete. */
export function readBuildRecord(buildDir: string): KernelRecord | undefined {
  return readRecord(join(buildDir, RECORD_IN_BUILD));
}

/** A record file, if it exists and the Image it names is still there. */
function readRecord(file: string): KernelRecord | undefined {
  if (!existsSync(file)) return undefined;
  const rec = JSON.parse(readFileSync(file, 'utf8')) as KernelRecord;
  return existsSync(rec.imagePath) ? rec : undefined;
}

/** Write the record inside the build dir, publish the dir (rename), then point `<version>.latest` at it. */
export function publishBuild(home: HomeLayout, partialDir: string, rec: KernelRecord): void {
  writeFileSync(join(partialDir, RECORD_IN_BUILD), `${JSON.stringify(rec, null, 2)}\n`);
  renameSync(partialDir, rec.buildDir);
  markLatest(home, rec);
}

export function markLatest(home: HomeLayout, rec: KernelRecord): void {
  mkdirSync(home.kernels, { recursive: true });
  const tmp = `${latestFile(home, rec.version)}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(rec, null, 2)}\n`);
  renameSync(tmp, latestFile(home, rec.version));
}

export function readLatest(home: HomeLayout, version: string): KernelRecord | undefined {
  return readRecord(latestFile(home, version));
}

export function requireKernel(home: HomeLayout, version: string): KernelRecord {
  const rec = readLatest(home, version);
  if (!rec) throw new UsageError(`no built kernel ${version}`, `Build it first: \`m5dev kernel build --version ${version}\` (add --kernel-url/--kernel-sha256 for a mirror).`);
  return rec;
}
