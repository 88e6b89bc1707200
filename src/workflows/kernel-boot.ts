/** Find the kernel that `m5dev kernel build` produced for a version, for direct boot. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HomeLayout } from '../paths.js';
import { UsageError } from '../errors.js';
import type { KernelBoot } from './up.js';

export const DIRECT_BOOT_APPEND = 'root=LABEL=cloudimg-rootfs rw rootwait console=ttyAMA0';

export interface KernelRecord {
  version: string;
  release: string;
  imagePath: string;
  imageSha256: string;
  buildDir: string;
}

export function latestKernelFile(home: HomeLayout, version: string): string {
  return join(home.kernels, `${version}.latest.json`);
}

export function readKernelRecord(home: HomeLayout, version: string): KernelRecord | undefined {
  const f = latestKernelFile(home, version);
  if (!existsSync(f)) return undefined;
  const rec = JSON.parse(readFileSync(f, 'utf8')) as KernelRecord;
  return existsSync(rec.imagePath) ? rec : undefined;
}

export function kernelBootFor(home: HomeLayout, version: string): KernelBoot {
  const rec = readKernelRecord(home, version);
  if (!rec) throw new UsageError(`no built kernel ${version}`, `Build it first: \`m5dev kernel build --version ${version}\`.`);
  return { imagePath: rec.imagePath, release: rec.release, append: DIRECT_BOOT_APPEND };
}
