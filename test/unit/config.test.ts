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
