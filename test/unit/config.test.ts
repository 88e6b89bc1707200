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
    expect(loadConfigFile(proj).shares).toEqual([{ host: join(proj, 'src'), guest: '/home/ubuntu/m5' }]);
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
  });
});
