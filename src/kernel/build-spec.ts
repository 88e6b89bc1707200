/** How a kernel is built in the toolchain container: cache key, reproducible environment, make lines (pure). */
import { createHash } from 'node:crypto';

/** Container paths of a kernel build (fixed, so paths baked into the build never differ). */
export const KERNEL_MOUNTS = { src: '/src', build: '/build', fragment: '/fragment.config', tarball: '/tarball.tar.xz', out: '/out' } as const;

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
}

/** The cache key: any change of source, config or toolchain is a different build. */
export function kernelBuildKey(i: KernelBuildInputs): string {
  const h = createHash('sha256');
  h.update(JSON.stringify([i.version, i.tarballSha256, i.fragmentSha256, i.toolchainTag]));
  return `${i.version}-${h.digest('hex').slice(0, 16)}`;
}

export function containerEnv(): string[] {
  return Object.entries({ ...REPRODUCIBLE_ENV, ...CROSS }).map(([k, v]) => `${k}=${v}`);
}

/** `make` in the source tree, building out of tree into the build mount. */
export function makeArgs(targets: string[], opts: { jobs?: number; extra?: string[] } = {}): string[] {
  const args = ['make', '-C', KERNEL_MOUNTS.src, `O=${KERNEL_MOUNTS.build}`, `ARCH=${CROSS.ARCH}`, `CROSS_COMPILE=${CROSS.CROSS_COMPILE}`];
  if (opts.jobs) args.push(`-j${opts.jobs}`);
  return [...args, ...(opts.extra ?? []), ...targets];
}

export function configureArgs(): string[] {
  return makeArgs(['allnoconfig'], { extra: [`KCONFIG_ALLCONFIG=${KERNEL_MOUNTS.fragment}`] });
}

export function compileArgs(jobs: number): string[] {
  return makeArgs(['Image', 'modules'], { jobs });
}
