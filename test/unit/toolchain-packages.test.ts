import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../helpers/cli.js';

const script = join(ROOT, 'docker', 'm5dev-tools', 'm5dev-toolchain-packages');
const packages = (arch: string) => spawnSync('sh', [script, arch], { encoding: 'utf8' });

describe('toolchain packages per image architecture', () => {
  it('uses the cross compiler on amd64', () => {
    const r = packages('amd64');
    expect(r.status).toBe(0);
    expect(r.stdout.split(/\s+/)).toEqual(expect.arrayContaining(['gcc-aarch64-linux-gnu', 'libc6-dev-arm64-cross', 'gcc', 'make', 'flex', 'bison']));
  });

  it('uses the native compiler on arm64 (Debian has no gcc-aarch64-linux-gnu there)', () => {
    const r = packages('arm64');
    expect(r.status).toBe(0);
    const list = r.stdout.split(/\s+/).filter(Boolean);
    expect(list).toEqual(expect.arrayContaining(['gcc', 'libc6-dev', 'make', 'libssl-dev', 'libelf-dev']));
    expect(list.some((p) => p.includes('-aarch64-linux-gnu') || p.includes('arm64-cross'))).toBe(false);
    expect(list).toEqual(expect.arrayContaining(['qemu-system-arm', 'qemu-efi-aarch64', 'cloud-image-utils']));
  });

  it('refuses an architecture it has no recipe for, naming it', () => {
    const r = packages('riscv64');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no aarch64 toolchain recipe for riscv64/);
  });
});
