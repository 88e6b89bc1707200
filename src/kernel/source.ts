/** Which kernel tarball to fetch, and what release a source tree is (pure). */
import { UsageError } from '../errors.js';

export const DEFAULT_KERNEL_VERSION = '6.6.33';

/** SHA-256 of kernel.org's linux-<version>.tar.xz, for the versions m5dev pins. */
export const KERNEL_PINS: Readonly<Record<string, string>> = {
  '6.6.33': 'a13ebc20dc2a75722699949af74aa86a4ce5d544d6daaa6a7de4e8c81b40de97',
};

export const KERNEL_VERSION_RE = /^\d+\.\d+(\.\d+)?$/;

export function kernelOrgUrl(version: string): string {
  const major = version.split('.')[0];
  return `https://cdn.kernel.org/pub/linux/kernel/v${major}.x/linux-${version}.tar.xz`;
}

export interface KernelSource {
  version: string;
  url: string;
  sha256: string;
}

/** Pinned kernel.org source unless overridden; an unpinned download without a digest is refused. */
export function resolveKernelSource(opts: { version?: string; url?: string; sha256?: string }): KernelSource {
  const version = opts.version ?? DEFAULT_KERNEL_VERSION;
  if (!KERNEL_VERSION_RE.test(version)) throw new UsageError(`bad kernel version "${version}"`, 'Use a release number such as 6.6.33.');
  const sha256 = (opts.sha256 ?? KERNEL_PINS[version])?.toLowerCase();
  if (!sha256) {
    throw new UsageError(`no pinned SHA-256 for linux-${version}`, `Pass --kernel-sha256 <hex> (from kernel.org's sha256sums.asc) to use ${version}.`);
  }
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new UsageError('--kernel-sha256 must be 64 hex digits');
  return { version, url: opts.url ?? kernelOrgUrl(version), sha256 };
}

/** The release a tree's top-level Makefile describes: VERSION.PATCHLEVEL.SUBLEVEL + EXTRAVERSION. */
export function makefileVersion(makefile: string): string | undefined {
  const get = (key: string): string | undefined => new RegExp(`^${key}\\s*=[ \\t]*(\\S*)[ \\t]*$`, 'm').exec(makefile)?.[1];
  const [v, p, s] = [get('VERSION'), get('PATCHLEVEL'), get('SUBLEVEL')];
  if (!v || !p) return undefined;
  return `${v}.${p}${s && s !== '0' ? `.${s}` : ''}${get('EXTRAVERSION') ?? ''}`;
}
