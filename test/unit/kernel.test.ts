import { parseLoadReport } from '../../src/workflows/module.js';
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KERNEL_PINS, kernelOrgUrl, makefileVersion, resolveKernelSource } from '../../src/kernel/source.js';
import { checkConfig, describeMismatches, parseConfig } from '../../src/kernel/config-fragment.js';
import { compileArgs, configureArgs, containerEnv, kernelBuildKey, kernelPaths } from '../../src/kernel/build-spec.js';
import { builtFor, moduleSources, paramsForInstance, parseModuleParams, parseTap, tapPassed, vermagicOf } from '../../src/module/artifacts.js';
import { UsageError } from '../../src/errors.js';
import { KERNEL_CONFIG_DIR } from '../../src/assets.js';
import { throttledLines } from '../../src/workflows/progress.js';

describe('kernel source', () => {
  it('pins 6.6.33 to kernel.org with its published digest', () => {
    const s = resolveKernelSource({});
    expect(s).toEqual({
      version: '6.6.33',
      url: 'https://cdn.kernel.org/pub/linux/kernel/v6.x/linux-6.6.33.tar.xz',
      sha256: 'a13ebc20dc2a75722699949af74aa86a4ce5d544d6daaa6a7de4e8c81b40de97',
    });
    expect(KERNEL_PINS['6.6.34']).toBeUndefined();
  });

  it('takes a mirror URL and digest, and refuses an unpinned version without a digest', () => {
    const sha = 'ab'.repeat(32);
    expect(resolveKernelSource({ version: '6.1.192', url: 'http://127.0.0.1:1/l.tar.xz', sha256: sha.toUpperCase() })).toEqual({ version: '6.1.192', url: 'http://127.0.0.1:1/l.tar.xz', sha256: sha });
    expect(() => resolveKernelSource({ version: '6.6.34' })).toThrow(/no pinned SHA-256 for linux-6.6.34/);
    expect(() => resolveKernelSource({ version: '6.6.34' })).toThrow(UsageError);
    expect(() => resolveKernelSource({ version: 'latest' })).toThrow(/bad kernel version/);
    expect(() => resolveKernelSource({ version: '6.1.192', sha256: 'xyz' })).toThrow(/64 hex/);
    expect(kernelOrgUrl('5.15.1')).toBe('https://cdn.kernel.org/pub/linux/kernel/v5.x/linux-5.15.1.tar.xz');
  });

  it('reads the release from a top-level Makefile', () => {
    const mk = (s: string, e = '') => `# SPDX\nVERSION = 6\nPATCHLEVEL = 6\nSUBLEVEL = ${s}\nEXTRAVERSION =${e}\nNAME = Hurr durr\n`;
    expect(makefileVersion(mk('33'))).toBe('6.6.33');
    expect(makefileVersion(mk('0'))).toBe('6.6');
    expect(makefileVersion(mk('0', ' -rc3'))).toBe('6.6-rc3');
    expect(makefileVersion('all:\n')).toBeUndefined();
  });
});

describe('config fragment', () => {
  const fragment = parseConfig('# comment\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x y"\nCONFIG_D=0x10\n');

  it('parses set, unset and string values', () => {
    expect([...fragment]).toEqual([['CONFIG_A', 'y'], ['CONFIG_B', 'n'], ['CONFIG_C', '"x y"'], ['CONFIG_D', '0x10']]);
  });

  it('reports symbols that Kconfig dropped or changed', () => {
    const ok = parseConfig('CONFIG_A=y\nCONFIG_C="x y"\nCONFIG_D=0x10\nCONFIG_E=y\n');
    expect(checkConfig(fragment, ok)).toEqual([]);
    const bad = checkConfig(fragment, parseConfig('CONFIG_B=y\nCONFIG_C="x"\n# CONFIG_D is not set\n'));
    expect(bad).toEqual([
      { symbol: 'CONFIG_A', wanted: 'y', got: 'absent' },
      { symbol: 'CONFIG_B', wanted: 'n', got: 'y' },
      { symbol: 'CONFIG_C', wanted: '"x y"', got: '"x"' },
      { symbol: 'CONFIG_D', wanted: '0x10', got: 'n' },
    ]);
    expect(describeMismatches(bad)).toContain('CONFIG_A: wanted y, got absent');
  });

  it('the shipped fragment asks for modules, virtio, the PL011 console and ext4', () => {
    const f = parseConfig(readFileSync(join(KERNEL_CONFIG_DIR, 'm5dev-virt.config'), 'utf8'));
    for (const s of ['CONFIG_MODULES', 'CONFIG_MODULE_UNLOAD', 'CONFIG_VIRTIO_BLK', 'CONFIG_VIRTIO_NET', 'CONFIG_VIRTIO_MMIO', 'CONFIG_SERIAL_AMBA_PL011_CONSOLE', 'CONFIG_EXT4_FS', 'CONFIG_DEVTMPFS', 'CONFIG_9P_FS', 'CONFIG_ISO9660_FS']) {
      expect(f.get(s), s).toBe('y');
    }
    expect(f.get('CONFIG_MODVERSIONS')).toBe('n');
    expect(f.get('CONFIG_LOCALVERSION_AUTO')).toBe('n');
  });
});

describe('kernel build spec', () => {
  const inputs = { version: '6.6.33', tarballSha256: 'a'.repeat(64), fragmentSha256: 'b'.repeat(64), toolchainTag: 'm5dev/toolchain:1', compiler: 'aarch64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0' };

  it('keys the cache by version, tarball, config, toolchain and its exact compiler', () => {
    const k = kernelBuildKey(inputs);
    expect(k).toMatch(/^6\.6\.33-[0-9a-f]{16}$/);
    expect(kernelBuildKey({ ...inputs })).toBe(k);
    for (const change of [{ version: '6.6.34' }, { tarballSha256: 'c'.repeat(64) }, { fragmentSha256: 'c'.repeat(64) }, { toolchainTag: 'm5dev/toolchain:2' }, { compiler: 'aarch64-linux-gnu-gcc (Debian 12.2.0-14+deb12u1) 12.2.0' }]) {
      expect(kernelBuildKey({ ...inputs, ...change })).not.toBe(k);
    }
  });

  it('builds reproducibly and out of tree with the cross compiler', () => {
    const env = containerEnv();
    expect(env).toContain('KBUILD_BUILD_USER=m5dev');
    expect(env).toContain('KBUILD_BUILD_HOST=m5dev');
    expect(env).toContain('KBUILD_BUILD_VERSION=1');
    expect(env.some((e) => e.startsWith('KBUILD_BUILD_TIMESTAMP='))).toBe(true);
    expect(env).toContain('CROSS_COMPILE=aarch64-linux-gnu-');
    const p = kernelPaths('a'.repeat(64), '6.6.33-0123456789abcdef');
    expect(p).toEqual({ src: `/kernels/src/${'a'.repeat(64)}`, build: '/kernels/build/6.6.33-0123456789abcdef' });
    expect(configureArgs(p, '/kernels/fragments/f.config')).toEqual(['make', '-C', p.src, `O=${p.build}`, 'ARCH=arm64', 'CROSS_COMPILE=aarch64-linux-gnu-', 'KCONFIG_ALLCONFIG=/kernels/fragments/f.config', 'allnoconfig']);
    expect(compileArgs(p, 3)).toEqual(['make', '-C', p.src, `O=${p.build}`, 'ARCH=arm64', 'CROSS_COMPILE=aarch64-linux-gnu-', '-j3', 'Image', 'modules']);
  });
});

describe('module artefacts', () => {
  it('hashes and copies only sources, not the products of an in-place build', () => {
    expect(moduleSources(['Makefile', 'm5.c', 'm5.o', 'm5.ko', 'm5.mod.c', '.m5.o.cmd', 'Module.symvers', 'test/m5_test.c', 'inc/x.h', 'Kbuild'])).toEqual([
      'Makefile',
      'm5.c',
      'test/m5_test.c',
      'inc/x.h',
      'Kbuild',
    ]);
  });

  it('reads vermagic from .modinfo and matches the exact release', () => {
    const ko = Buffer.concat([Buffer.from('\x7fELF junk\0license=GPL\0'), Buffer.from('vermagic=6.6.33 SMP preempt mod_unload aarch64\0'), Buffer.from('name=m5\0')]);
    const v = vermagicOf(ko)!;
    expect(v).toBe('6.6.33 SMP preempt mod_unload aarch64');
    expect(builtFor(v, '6.6.33')).toBe(true);
    expect(builtFor(v, '6.6.34')).toBe(false);
    expect(builtFor(v, '6.6.3')).toBe(false);
    expect(vermagicOf(Buffer.from('no magic here'))).toBeUndefined();
  });

  it('judges TAP output: every planned check must pass', () => {
    const good = 'TAP version 13\nok 1 - open\nok 2 - map\n1..2\n';
    expect(tapPassed(parseTap(good))).toBe(true);
    const failed = parseTap('ok 1 - open\nnot ok 2 - beyond the range fails\n1..2\n');
    expect(failed.failed).toEqual(['beyond the range fails']);
    expect(tapPassed(failed)).toBe(false);
    expect(tapPassed(parseTap('ok 1 - open\n'))).toBe(false); // no plan: the program died early
    expect(tapPassed(parseTap('ok 1 - a\n1..3\n'))).toBe(false);
    expect(tapPassed(parseTap('Bail out! cannot read\n1..0\n'))).toBe(false);
  });

  it('accepts name=value module parameters only', () => {
    expect(parseModuleParams(['gem5_bridge_baseaddr=0x10010000'])).toEqual(['gem5_bridge_baseaddr=0x10010000']);
    expect(() => parseModuleParams(['x=1; reboot'])).toThrow(UsageError);
    expect(() => parseModuleParams(['novalue'])).toThrow(/bad module parameter/);
  });

  it("loads the module for the instance's m5ops base: added when the base is not the module's default, the user's own value kept", () => {
    const dflt = 0x10010000;
    expect(paramsForInstance(['x=1'], 0x10020000, dflt)).toEqual(['x=1', 'gem5_bridge_baseaddr=0x10020000']);
    expect(paramsForInstance(['x=1'], dflt, dflt)).toEqual(['x=1']);
    expect(paramsForInstance([], undefined, dflt)).toEqual([]);
    expect(paramsForInstance(['gem5_bridge_baseaddr=0x20000000'], 0x10020000, dflt)).toEqual(['gem5_bridge_baseaddr=0x20000000']);
    // Another parameter whose name merely starts alike is not the base.
    expect(paramsForInstance(['gem5_bridge_baseaddr_x=1'], 0x10020000, dflt)).toEqual(['gem5_bridge_baseaddr_x=1', 'gem5_bridge_baseaddr=0x10020000']);
  });
});

describe('build progress', () => {
  it('shows at most one line per interval, with a running count', () => {
    const shown: string[] = [];
    let t = 0;
    const push = throttledLines((l) => shown.push(l), 2000, () => t);
    for (const [at, line] of [[0, 'CC a.o'], [500, 'CC b.o'], [1999, 'CC c.o'], [2000, 'CC d.o'], [2100, 'CC e.o'], [4500, '  LD vmlinux ']] as const) {
      t = at;
      push(line);
    }
    expect(shown).toEqual(['[1 lines] CC a.o', '[4 lines] CC d.o', '[6 lines] LD vmlinux']);
  });
});

describe('what a loaded module added', () => {
  it('reads device nodes and parameters from the guest report', () => {
    expect(parseLoadReport('device /dev/gem5_bridge\nparameter m5.gem5_bridge_baseaddr=268500992\nparameter m5.x=a=b\nnoise\n')).toEqual({
      devices: ['/dev/gem5_bridge'],
      parameters: { 'm5.gem5_bridge_baseaddr': '268500992', 'm5.x': 'a=b' },
    });
    expect(parseLoadReport('')).toEqual({ devices: [], parameters: {} });
  });
});
