/** How a kernel is built in the toolchain container: cache key, reproducible environment, make lines (pure). */
import { createHash } from 'node:crypto';

import { buildName, inContainer, srcName } from './cache.js';

/**
 * Container paths of one build: its source and build trees in the kernel storage at /kernels. They
 * follow from the build's key, so a build always has the same paths baked in, on every engine (and
 * a finished build copied to another engine is valid there as it is).
 */
export interface KernelPaths {
  src: string;
  build: string;
}

export function kernelPaths(tarballSha256: string, key: string): KernelPaths {
  return { src: inContainer(srcName(tarballSha256)), build: inContainer(buildName(key)) };
}

/** Fixed build identity: two builds of the same inputs give the same Image. */
export const REPRODUCIBLE_ENV: Readonly<Record<string, string>> = {
  KBUILD_BUILD_TIMESTAMP: '2024-06-12 00:00:00 UTC',
  KBUILD_BUILD_USER: 'm5dev',
  KBUILD_BUILD_HOST: 'm5dev',
  KBUILD_BUILD_VERSION: '1',
  LC_ALL: 'C',
  TZ: 'UTC',
};

export const CROSS = { ARCH: 'arm64', CROSS_COMPILE: 'aarch64-linux-gnu-' } as const;

export interface KernelBuildInputs {
  version: string;
  tarballSha256: string;
  fragmentSha256: string;
  toolchainTag: string;
  /** The toolchain's exact compiler and linker versions (see docker/compiler.ts). */
  compiler: string;
}

/**
 * The cache key: any change of source, config or toolchain is a different build. LAYOUT names the
 * in-container paths (2: the tree under /kernels); builds of another layout are never reused.
 */
const LAYOUT = 2;
export function kernelBuildKey(i: KernelBuildInputs): string {
  const h = createHash('sha256');
  h.update(JSON.stringify([i.version, i.tarballSha256, i.fragmentSha256, i.toolchainTag, i.compiler, LAYOUT]));
  return `${i.version}-${h.digest('hex').slice(0, 16)}`;
}

export function containerEnv(): string[] {
  return Object.entries({ ...REPRODUCIBLE_ENV, ...CROSS }).map(([k, v]) => `${k}=${v}`);
}

/** `make` in the source tree, building out of tree into the build tree. */
export function makeArgs(paths: KernelPaths, targets: string[], opts: { jobs?: number; extra?: string[] } = {}): string[] {
  const args = ['make', '-C', paths.src, `O=${paths.build}`, `ARCH=${CROSS.ARCH}`, `CROSS_COMPILE=${CROSS.CROSS_COMPILE}`];
  if (opts.jobs) args.push(`-j${opts.jobs}`);
  return [...args, ...(opts.extra ?? []), ...targets];
}

export function configureArgs(paths: KernelPaths, fragment: string): string[] {
  return makeArgs(paths, ['allnoconfig'], { extra: [`KCONFIG_ALLCONFIG=${fragment}`] });
}

export function compileArgs(paths: KernelPaths, jobs: number): string[] {
  return makeArgs(paths, ['Image', 'modules'], { jobs });
}
