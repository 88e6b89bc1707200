import { describe, expect, it } from 'vitest';
import { DEFAULTS, parseConfig, parseMemory, resolveConfig } from '../../src/config.js';
import { UsageError } from '../../src/errors.js';

describe('config', () => {
  it('accepts valid settings and normalises them', () => {
    const c = parseConfig({ imageUrl: 'http://127.0.0.1:8080/x.img', imageSha256: 'A'.repeat(64), diskGrow: '5G', sshPort: '6000', accel: 'tcg', ramFile: true, tcgCacheMiB: '512' }, 't');
    expect(c).toEqual({ imageUrl: 'http://127.0.0.1:8080/x.img', imageSha256: 'a'.repeat(64), diskGrow: '+5G', sshPort: 6000, accel: 'tcg', ramFile: true, tcgCacheMiB: 512 });
    expect(DEFAULTS.ramFile).toBe(true);
    expect(DEFAULTS.tcgCacheMiB).toBe(256);
  });

  it.each([
    [{ sshPort: 0 }, /sshPort/],
    [{ sshPort: 70000 }, /sshPort/],
    [{ imageSha256: 'abc' }, /64 hex/],
    [{ imageUrl: 'ftp://x' }, /URL/],
    [{ disk: 'zfs' }, /raw/],
    [{ accel: 'hvf' }, /auto, kvm or tcg/],
    [{ cpu: 'max; rm -rf /' }, /-cpu/],
    [{ ramFile: 'yes' }, /true or false/],
    [{ tcgCacheMiB: 8 }, /tcgCacheMiB/],
    [{ tcgCacheMiB: '1G' }, /tcgCacheMiB/],
    [{ colour: 'blue' }, /unknown setting "colour"/],
  ])('rejects %j', (raw, msg) => {
    expect(() => parseConfig(raw, 'm5dev.json')).toThrow(msg);
    expect(() => parseConfig(raw, 'm5dev.json')).toThrow(UsageError);
  });

  it('rejects non-objects', () => {
    expect(() => parseConfig([1], 'f')).toThrow(/JSON object/);
  });

  it('flags beat the file, the file beats defaults', () => {
    const c = resolveConfig({ sshPort: 7000, cpus: undefined }, { sshPort: 6000, cpus: 4 });
    expect(c.sshPort).toBe(7000);
    expect(c.cpus).toBe(4);
    expect(c.imageUrl).toBe(DEFAULTS.imageUrl);
    expect(DEFAULTS.imageUrl).toContain('release-20240612/ubuntu-22.04-server-cloudimg-arm64.img');
  });

  it('parses memory sizes', () => {
    expect(parseMemory('2048')).toBe(2048);
    expect(parseMemory('4G')).toBe(4096);
    expect(parseMemory('512m')).toBe(512);
    expect(() => parseMemory('lots')).toThrow(/--memory/);
  });
});

describe("a cloned repository's m5dev.json", () => {
  it('may share only its own tree; the command line may share more; system places never', async () => {
    const { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, realpathSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { loadConfigFile, parseConfig } = await import('../../src/config.js');
    const proj = mkdtempSync(join(tmpdir(), 'm5dev-proj-'));
    mkdirSync(join(proj, 'src'));
    const write = (o: unknown) => writeFileSync(join(proj, 'm5dev.json'), JSON.stringify(o));
    write({ shares: ['src:m5'], m5opsReadfile: 'src' });
    // Read-only, whatever the file says: the command line makes a share writable.
    expect(loadConfigFile(proj).shares).toEqual([{ host: join(proj, 'src'), guest: '/home/ubuntu/m5', readOnly: true }]);
    write({ shares: [{ host: 'src', readOnly: false }, 'src:/opt/s:rw'] });
    expect(loadConfigFile(proj).shares?.map((s) => s.readOnly)).toEqual([true, true]);
    write({ shares: ['/etc:hostetc'] });
    expect(() => loadConfigFile(proj)).toThrow(/will not share \/etc with the guest: \/etc is a system directory/);
    const outside = mkdtempSync(join(tmpdir(), 'm5dev-outside-'));
    write({ shares: [`${outside}:x`] });
    expect(() => loadConfigFile(proj)).toThrow(/the share .* lies outside/);
    symlinkSync(outside, join(proj, 'link'));
    write({ shares: ['link:x'] }); // inside by name, outside by where it leads
    expect(() => loadConfigFile(proj)).toThrow(new RegExp(`the share ${realpathSync(outside)} lies outside`));
    write({ m5opsReadfile: '../../etc/passwd' });
    expect(() => loadConfigFile(proj)).toThrow(/the m5ops readfile .* lies outside/);
    expect(parseConfig({ shares: [`${outside}:x`] }, 'command line').shares).toHaveLength(1);
    expect(() => parseConfig({ shares: ['/:x'] }, 'command line')).toThrow(/holds every user's files/);
    // A sibling whose name starts with the project's is not inside it.
    mkdirSync(`${proj}-x`);
    write({ shares: [`${proj}-x:x`] });
    expect(() => loadConfigFile(proj)).toThrow(/the share .*-x lies outside/);
    writeFileSync(`${proj}-x/job`, 'x');
    write({ m5opsReadfile: `${proj}-x/job` });
    expect(() => loadConfigFile(proj)).toThrow(/the m5ops readfile .*-x\/job lies outside/);
  });

  it('may not choose code: baseImage, imageUrl, imageSha256 are refused (exit 22) unless --trust-config names each', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { loadConfigFile, loadUserConfig, parseTrustList, CODE_SETTINGS } = await import('../../src/config.js');
    const { ExitCode, UntrustedConfigError } = await import('../../src/errors.js');
    expect([...CODE_SETTINGS].sort()).toEqual(['baseImage', 'imageSha256', 'imageUrl']);
    const proj = mkdtempSync(join(tmpdir(), 'm5dev-proj-'));
    const write = (o: unknown) => writeFileSync(join(proj, 'm5dev.json'), JSON.stringify(o));
    write({ baseImage: 'evil/base:latest', cpus: 2 });
    const e = (() => { try { loadConfigFile(proj); } catch (err) { return err; } })() as InstanceType<typeof UntrustedConfigError>;
    expect(e).toBeInstanceOf(UntrustedConfigError);
    expect(e.exitCode).toBe(ExitCode.untrustedConfig);
    expect(ExitCode.untrustedConfig).toBe(22);
    expect(e.message).toMatch(/m5dev\.json sets "baseImage", which chooses code this machine runs or boots/);
    expect(e.hint).toContain('--trust-config baseImage');
    write({ imageUrl: 'https://example.invalid/x.img', imageSha256: 'a'.repeat(64), baseImage: 'b' });
    expect(() => loadConfigFile(proj, parseTrustList('imageUrl'))).toThrow(/sets "imageSha256", "baseImage", which choose code/);
    expect(loadConfigFile(proj, parseTrustList('imageUrl,imageSha256, baseImage'))).toMatchObject({ baseImage: 'b', imageSha256: 'a'.repeat(64) });
    expect(() => parseTrustList('cpus')).toThrow(/"cpus" is not a setting that chooses code/);
    expect(parseTrustList(undefined).size).toBe(0);
    // The user's own config (in $M5DEV_HOME) is trusted: it may name a base image.
    const home = mkdtempSync(join(tmpdir(), 'm5dev-home-'));
    writeFileSync(join(home, 'config.json'), JSON.stringify({ baseImage: 'mine/base:1' }));
    expect(loadUserConfig(home)).toEqual({ baseImage: 'mine/base:1' });
    expect(loadUserConfig(proj)).toEqual({});
    expect(resolveConfig({}, { cpus: 1 }, { baseImage: 'mine/base:1', cpus: 2 })).toMatchObject({ baseImage: 'mine/base:1', cpus: 1 });
    expect(resolveConfig({ baseImage: 'flag' }, {}, { baseImage: 'mine/base:1' }).baseImage).toBe('flag');
  });

  it('asks for resources the host caps, and says so', async () => {
    const { capResources, growBytes } = await import('../../src/config.js');
    const host = { cpus: 2, memoryMiB: 8000, diskFreeGiB: 50 };
    const { config, notes } = capResources({ cpus: 64, memoryMiB: 1 << 20, tcgCacheMiB: 4096, sshPort: 6000 }, host, 'm5dev.json');
    expect(config).toEqual({ cpus: 2, memoryMiB: 8000, tcgCacheMiB: 2000, sshPort: 6000 });
    expect(notes).toEqual([
      'm5dev.json asks for 64 vCPUs; capped to 2 (this host\'s cores)',
      'm5dev.json asks for 1048576 MiB of guest memory; capped to 8000 MiB (three quarters of this host\'s)',
      'm5dev.json asks for a 4096 MiB translated-code cache; capped to 2000 MiB',
    ]);
    expect(capResources({ cpus: 2, memoryMiB: 8000, tcgCacheMiB: 2000 }, host, 'f')).toEqual({ config: { cpus: 2, memoryMiB: 8000, tcgCacheMiB: 2000 }, notes: [] });
    // A disk to grow past the free space: the guest could fill this host's disk.
    expect(capResources({ diskGrow: '+1000T' }, host, 'm5dev.json')).toEqual({ config: { diskGrow: '+50G' }, notes: ['m5dev.json asks to grow the disk by 1000T; capped to 50G (the free space where instances live)'] });
    expect(capResources({ diskGrow: '+50G' }, host, 'f').notes).toEqual([]);
    expect([growBytes('+10G'), growBytes('512M'), growBytes('3'), growBytes('+1T')]).toEqual([10 * 2 ** 30, 512 * 2 ** 20, 3, 2 ** 40]);
  });
});

describe('config: the conversions and checks past the schema (issue 34: mutation survivors killed)', () => {
  it('numbers given as digits, as flags give them, are converted and range-checked; a setting left undefined is not given', async () => {
    const { parseConfig } = await import('../../src/config.js');
    expect(parseConfig({ cpus: '4', memoryMiB: '1024', bootTimeoutSec: '600', cpu: 'max', sshPort: undefined, diskGrow: '+5G' }, 'flags')).toEqual({ cpus: 4, memoryMiB: 1024, bootTimeoutSec: 600, cpu: 'max', diskGrow: '+5G' });
    expect(() => parseConfig({ sshPort: '70000' }, 'flags')).toThrow('flags: "sshPort" must be an integer from 1 to 65535, got "70000"');
    expect(() => parseConfig({ cpus: '0' }, 'flags')).toThrow(/"cpus" must be an integer from 1 to 64, got "0"/);
    expect(parseConfig({ cpus: '64', sshPort: '1' }, 'flags')).toEqual({ cpus: 64, sshPort: 1 });
    for (const raw of [null, 'cpus', 3, [1]]) expect(() => parseConfig(raw, 'f')).toThrow('f: expected a JSON object');
    expect(parseConfig({ $schema: './m5dev.schema.json' }, 'f')).toEqual({});
    expect(parseConfig({ m5opsCheckpoints: true, ramFile: false }, 'f')).toEqual({ m5opsCheckpoints: true, ramFile: false });
  });

  it('parseIntOption: whole numbers within bounds, said with the option and what was given', async () => {
    const { parseIntOption } = await import('../../src/config.js');
    expect([parseIntOption('1', '--jobs', 1, 64), parseIntOption('64', '--jobs', 1, 64), parseIntOption('7', '--jobs', 1, 64)]).toEqual([1, 64, 7]);
    for (const bad of ['0', '65', '1.5', '-1', 'x', ' 7', '7 ', '']) expect(() => parseIntOption(bad, '--jobs', 1, 64)).toThrow(`--jobs must be an integer from 1 to 64, got ${JSON.stringify(bad)}`);
  });

  it("an m5ops base: 64 KiB-aligned, inside virt's PCIe MMIO window, as a number or its digits (hex or decimal)", async () => {
    const { parseM5opsAddr } = await import('../../src/config.js');
    const { PCIE_MMIO, M5OPS_SIZE } = await import('../../src/config-schema.js');
    const bad = (want: string) => new Error(want);
    expect([parseM5opsAddr('0x10020000', bad), parseM5opsAddr('0X10020000', bad), parseM5opsAddr(0x10020000, bad), parseM5opsAddr(String(0x10020000), bad)]).toEqual([0x10020000, 0x10020000, 0x10020000, 0x10020000]);
    // The window's first and last 64 KiB, and nothing past either end.
    expect(parseM5opsAddr(PCIE_MMIO.start, bad)).toBe(PCIE_MMIO.start);
    expect(parseM5opsAddr(PCIE_MMIO.end - M5OPS_SIZE, bad)).toBe(PCIE_MMIO.end - M5OPS_SIZE);
    for (const v of [PCIE_MMIO.start - M5OPS_SIZE, PCIE_MMIO.end, PCIE_MMIO.end - M5OPS_SIZE + 4096, 0x10020001, 0x10020000 + 0.5, ' 0x10020000', '0x10020000 ', '0x1002000g', 'x', true, undefined]) {
      expect(() => parseM5opsAddr(v, bad), String(v)).toThrow(/64 KiB-aligned address/);
    }
  });

  it('init_param values: only a string "KEY=VALUE"', async () => {
    const { parseM5opsParam } = await import('../../src/config.js');
    const bad = (want: string) => new Error(want);
    expect(parseM5opsParam('size=4', bad)).toEqual({ key: 'size', value: '4' });
    expect(() => parseM5opsParam(4, bad)).toThrow(/KEY=VALUE/);
  });

  it('memory sizes and disk growth: whole strings only', async () => {
    const { growBytes } = await import('../../src/config.js');
    expect(parseMemory(' 4G ')).toBe(4096);
    expect(parseMemory('4g')).toBe(4096);
    for (const bad of ['x4G', '4Gx', '4T']) expect(() => parseMemory(bad)).toThrow(`--memory: expected a size like 2048, 512M or 4G, got "${bad}"`);
    for (const bad of ['x10G', '10Gx', 'ten', '']) expect(growBytes(bad)).toBeNaN();
  });

  it("--trust-config names only settings that choose code, and says which those are", async () => {
    const { parseTrustList } = await import('../../src/config.js');
    const e = (() => {
      try {
        parseTrustList('imageUrl,cpus');
      } catch (err) {
        return err as UsageError;
      }
    })();
    expect([e?.message, e?.hint]).toEqual(['--trust-config: "cpus" is not a setting that chooses code', 'Name some of: imageUrl, imageSha256, baseImage.']);
  });

  it('the host: its cores, three quarters of its memory, the free space of the nearest existing directory', async () => {
    const { hostResources } = await import('../../src/config.js');
    const { availableParallelism, totalmem, tmpdir } = await import('node:os');
    const { statfsSync } = await import('node:fs');
    const st = statfsSync(tmpdir());
    const r = hostResources(`${tmpdir()}/not/made/yet`);
    expect(r).toEqual({ cpus: availableParallelism(), memoryMiB: Math.floor((totalmem() / 2 ** 20) * 0.75), diskFreeGiB: Math.floor((st.bavail * st.bsize) / 2 ** 30) });
  });

  it("a repository without m5dev.json sets nothing; a broken one is named; its own directory may be shared, also when reached through a link", async () => {
    const { mkdtempSync, mkdirSync, writeFileSync, symlinkSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { loadConfigFile } = await import('../../src/config.js');
    const proj = mkdtempSync(join(tmpdir(), 'm5dev-proj-'));
    expect(loadConfigFile(proj)).toEqual({});
    writeFileSync(join(proj, 'm5dev.json'), '{ not json');
    expect(() => loadConfigFile(proj)).toThrow(new RegExp(`^${join(proj, 'm5dev.json')}: not valid JSON \\(`));
    mkdirSync(join(proj, 'src'));
    writeFileSync(join(proj, 'm5dev.json'), JSON.stringify({ shares: ['.:whole', 'src:s'] }));
    const via = join(mkdtempSync(join(tmpdir(), 'm5dev-via-')), 'proj');
    symlinkSync(proj, via);
    expect(loadConfigFile(via).shares?.map((s) => s.host)).toEqual([proj, join(proj, 'src')]);
    writeFileSync(join(proj, 'm5dev.json'), JSON.stringify({ shares: ['/nonexistent-m5dev-dir:x'] }));
    const e = (() => {
      try {
        loadConfigFile(proj);
      } catch (err) {
        return err as UsageError;
      }
    })();
    expect(e?.message).toBe(`${join(proj, 'm5dev.json')}: the share /nonexistent-m5dev-dir is not a directory m5dev can resolve`);
    const outside = mkdtempSync(join(tmpdir(), 'm5dev-outside-'));
    writeFileSync(join(proj, 'm5dev.json'), JSON.stringify({ shares: [`${outside}:x`] }));
    const out = (() => {
      try {
        loadConfigFile(proj);
      } catch (err) {
        return err as UsageError;
      }
    })();
    expect(out?.hint).toBe('An m5dev.json may share with the guest only what lies in its own directory tree; give anything else on the command line (--share, --m5ops-readfile).');
  });

  it("m5dev's own home is never shared, and a refused share says so with the source named", async () => {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { parseConfig } = await import('../../src/config.js');
    const { startSession, sessionOf, session } = await import('../../src/session.js');
    const before = session();
    const home = mkdtempSync(join(tmpdir(), 'm5dev-home-'));
    startSession(sessionOf({ ...before.env, M5DEV_HOME: home }));
    try {
      expect(() => parseConfig({ shares: [`${home}:h`] }, 'command line')).toThrow(`command line: will not share ${home} with the guest: the guest would reach ${home}`);
      // A directory beside it is shared.
      const beside = mkdtempSync(join(tmpdir(), 'm5dev-beside-'));
      expect(parseConfig({ shares: [`${beside}:b`] }, 'command line').shares).toEqual([{ host: beside, guest: '/home/ubuntu/b', readOnly: false }]);
    } finally {
      startSession(before);
    }
  });
});
