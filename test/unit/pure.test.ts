import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSha256Sums, sumsLocation, unverifiableSums } from '../../src/download/sha256sums.js';
import { contextHash, listContext } from '../../src/docker/build-context.js';
import { fnv1a64, sshCommand, sshConfigBlock, sshOptions, sshPath, hostControlPath } from '../../src/ssh/args.js';
import { proxyCommandLine } from '../../src/ssh/proxy.js';
import { bootFailure, lastConsoleLine } from '../../src/vm/readiness.js';
import { chooseRenderer } from '../../src/cli/ui.js';
import { ExitCode, UsageError, engineLost, isPoolExhausted, tail } from '../../src/errors.js';
import { demuxBuffer } from '../../src/docker/containers.js';
import { toolchainTag } from '../../src/workflows/image-build.js';
import { execShortcut } from '../../src/cli/shortcut.js';
import { validateName } from '../../src/vm/instance.js';

describe('SHA256SUMS', () => {
  const a = 'a'.repeat(64);
  const b = 'B'.repeat(64);
  it('parses binary and text entries', () => {
    const m = parseSha256Sums(`${a} *ubuntu-22.04-server-cloudimg-arm64.img\n${b}  ./other.img\n# comment\ngarbage\n`);
    expect(m.get('ubuntu-22.04-server-cloudimg-arm64.img')).toBe(a);
    expect(m.get('other.img')).toBe('b'.repeat(64));
    expect(m.size).toBe(2);
  });
  it('finds SHA256SUMS beside the file', () => {
    expect(sumsLocation('https://h/releases/22.04/release-20240612/ubuntu.img?x=1')).toEqual({
      sumsUrl: 'https://h/releases/22.04/release-20240612/SHA256SUMS',
      name: 'ubuntu.img',
    });
    // A fragment goes, and an escaped name is looked up as the file is called.
    expect(sumsLocation('https://h/a/my%20disk.img#part')).toEqual({ sumsUrl: 'https://h/a/SHA256SUMS', name: 'my disk.img' });
    expect(sumsLocation('file:///srv/img/x.img')).toEqual({ sumsUrl: 'file:///srv/img/SHA256SUMS', name: 'x.img' });
  });
  it('reads only whole entries: CRLF lines, indented ones, names with spaces; not a short digest, a missing separator or a comment', () => {
    const m = parseSha256Sums(
      [`  ${a}  with space.img\r`, `${'c'.repeat(63)}  short.img`, `${'d'.repeat(64)}x.img`, `#${'e'.repeat(64)}  commented.img`, `${'f'.repeat(64)}  sub/./keep.img`, ''].join('\n'),
    );
    expect([...m.entries()]).toEqual([
      ['with space.img', a],
      ['sub/./keep.img', 'f'.repeat(64)],
    ]);
    expect(parseSha256Sums('').size).toBe(0);
  });
  it('vouches for an image only over a channel that is not plain http to another machine', () => {
    expect(unverifiableSums('http://mirror.example/img.img')).toMatch(/^http:\/\/mirror\.example is plain http: its SHA256SUMS comes over the same unauthenticated channel as the image$/);
    expect(unverifiableSums('http://10.0.0.1:8080/img.img')).toMatch(/plain http/);
    for (const ok of ['https://mirror.example/img.img', 'file:///srv/img.img', 'http://127.0.0.1:8080/img.img', 'http://127.9.8.7/img.img', 'http://localhost/img.img', 'http://[::1]:9/img.img']) {
      expect(unverifiableSums(ok), ok).toBeUndefined();
    }
    expect(unverifiableSums('http://127.0.0.1.evil.example/img.img')).toMatch(/plain http/);
    expect(unverifiableSums('http://127.10.200.1/img.img')).toBeUndefined();
  });
});

describe('build context hash', () => {
  const make = () => {
    const d = mkdtempSync(join(tmpdir(), 'ctx-'));
    mkdirSync(join(d, 'sub'));
    writeFileSync(join(d, 'Dockerfile'), 'FROM x\n');
    writeFileSync(join(d, 'sub', 'tool'), 'echo hi\n');
    return d;
  };
  it('is stable and lists files sorted', () => {
    const d = make();
    expect(listContext(d)).toEqual(['Dockerfile', 'sub/tool']);
    expect(contextHash(d, { A: '1' })).toBe(contextHash(d, { A: '1' }));
  });
  it('changes with content, executable bit and build args', () => {
    const d = make();
    const h0 = contextHash(d, { A: '1' });
    expect(contextHash(d, { A: '2' })).not.toBe(h0);
    chmodSync(join(d, 'sub', 'tool'), 0o755);
    const h1 = contextHash(d, { A: '1' });
    expect(h1).not.toBe(h0);
    writeFileSync(join(d, 'Dockerfile'), 'FROM y\n');
    expect(contextHash(d, { A: '1' })).not.toBe(h1);
  });
  it('names the tag by hash', () => {
    expect(toolchainTag('0123456789abcdef0123')).toBe('m5dev/toolchain:0123456789abcdef');
  });
});

describe('ssh arguments', () => {
  const t = { alias: 'm5dev-dev', port: 5555, identityFile: '/i/id', knownHostsFile: '/i/kh', controlPath: '/tmp/c' };
  it('pins the host key and never trusts on first use', () => {
    const cmd = sshCommand(t, ['uname', '-r'], { batch: true });
    const s = cmd.join(' ');
    expect(s).toContain('-o StrictHostKeyChecking=yes');
    expect(s).toContain('-o UserKnownHostsFile=/i/kh');
    expect(s).toContain('-o HostKeyAlias=m5dev-dev');
    expect(s).toContain('-o IdentitiesOnly=yes');
    expect(s).toContain('-F /dev/null');
    expect(s).not.toMatch(/StrictHostKeyChecking=(no|accept-new)/);
    expect(cmd.slice(-4)).toEqual(['ubuntu@127.0.0.1', '--', 'uname', '-r']);
    expect(s).toContain('-p 5555');
  });
  it('can disable connection reuse', () => {
    expect(sshCommand(t, [], { batch: true, reuse: false }).join(' ')).toContain('ControlMaster=no');
  });
  it('is exactly this command line: every option that keeps the connection to the pinned guest and to our key alone', () => {
    const o = (...kv: string[]) => kv.flatMap((x) => ['-o', x]);
    const pinned = ['-F', '/dev/null', ...o('HostKeyAlias=m5dev-dev', 'StrictHostKeyChecking=yes', 'UserKnownHostsFile=/i/kh', 'GlobalKnownHostsFile=/dev/null', 'HostKeyAlgorithms=ssh-ed25519', 'KexAlgorithms=^curve25519-sha256', 'IdentityFile=/i/id', 'IdentitiesOnly=yes', 'PasswordAuthentication=no', 'KbdInteractiveAuthentication=no')];
    expect(sshCommand(t, ['uname', '-r'], { batch: true })).toEqual([
      'ssh', ...pinned, ...o('BatchMode=yes', 'ConnectTimeout=10', 'ServerAliveInterval=15', 'LogLevel=ERROR', 'ControlMaster=auto', 'ControlPath=/tmp/c', 'ControlPersist=300'),
      '-p', '5555', 'ubuntu@127.0.0.1', '--', 'uname', '-r',
    ]);
    // Interactive: no batch mode, a terminal, a timeout of the caller's, no command; no reuse.
    expect(sshCommand({ ...t, proxyCommand: 'relay %h' }, [], { batch: false, tty: true, connectTimeoutSec: 3, reuse: false })).toEqual([
      'ssh', ...pinned, ...o('BatchMode=no', 'ConnectTimeout=3', 'ServerAliveInterval=15', 'LogLevel=ERROR', 'ControlMaster=no', 'ProxyCommand=relay %%h'),
      '-p', '5555', '-t', 'ubuntu@127.0.0.1',
    ]);
  });
  it('prints exactly this Host block', () => {
    expect(sshConfigBlock({ ...t, proxyCommand: 'relay %h' }, 'box')).toBe(
      ['Host box', '  HostName 127.0.0.1', '  Port 5555', '  User ubuntu', '  IdentityFile /i/id', '  IdentitiesOnly yes', '  HostKeyAlias m5dev-dev', '  UserKnownHostsFile /i/kh', '  StrictHostKeyChecking yes', '  PasswordAuthentication no', '  ProxyCommand relay %%h', ''].join('\n'),
    );
  });
  it('prints a usable Host block', () => {
    const block = sshConfigBlock(t, 'm5dev-dev');
    expect(block).toMatch(/^Host m5dev-dev\n {2}HostName 127\.0\.0\.1\n {2}Port 5555\n {2}User ubuntu\n/);
    expect(block).toContain('StrictHostKeyChecking yes');
  });
  it('reaches a guest through an Engine API relay with the same pinned key (remote engines)', () => {
    const proxy = proxyCommandLine('/usr/bin/node', '/opt/m 5/main.js', '/home/u/.cache/m5dev', 'dev');
    expect(proxy).toBe("/usr/bin/node '/opt/m 5/main.js' ssh-proxy --home /home/u/.cache/m5dev --name dev");
    const s = sshCommand({ ...t, proxyCommand: proxy }, ['true'], { batch: true }).join(' ');
    expect(s).toContain(`-o ProxyCommand=${proxy}`);
    expect(s).toContain('-o StrictHostKeyChecking=yes');
    const block = sshConfigBlock({ ...t, proxyCommand: proxy }, 'm5dev-dev');
    expect(block).toContain(`  ProxyCommand ${proxy}\n`);
    expect(block).toContain('  HostKeyAlias m5dev-dev\n');
    expect(sshConfigBlock(t, 'm5dev-dev')).not.toContain('ProxyCommand');
  });
  it('passes paths with blanks, quotes and % to OpenSSH as they are (its own parser: ssh -G)', () => {
    const dir = "/tmp/m5 dev's %h \\ \"home\"";
    const odd = { ...t, identityFile: `${dir}/id`, knownHostsFile: `${dir}/kh`, controlPath: `${dir}/c`, proxyCommand: "node '/m 5%/main.js' ssh-proxy" };
    const args = sshOptions(odd, { batch: true });
    const parsed = execFileSync('ssh', ['-G', ...args, 'ubuntu@127.0.0.1'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const value = (key: string) => parsed.split('\n').find((l) => l.startsWith(`${key} `))?.slice(key.length + 1);
    // ssh -G prints these after %-expansion; IdentityFile and ProxyCommand are expanded when used (%% → %).
    expect(value('userknownhostsfile')).toBe(`${dir}/kh`);
    expect(value('controlpath')).toBe(`${dir}/c`);
    expect(value('identityfile')?.replace(/%%/g, '%')).toBe(`${dir}/id`);
    expect(value('proxycommand')?.replace(/%%/g, '%')).toBe(odd.proxyCommand);
    expect(sshPath('/plain/path')).toBe('/plain/path');
  });
  it('keeps the control socket path short', () => {
    expect(hostControlPath('/a/very/long/path/'.repeat(20), '/run/user/100000/m5dev').length).toBeLessThan(100);
    expect(hostControlPath('/h/instances/a', '/run/m')).not.toBe(hostControlPath('/h/instances/b', '/run/m'));
  });
  it('names control sockets by FNV-1a 64 (the published test vectors)', () => {
    expect(fnv1a64('')).toBe('cbf29ce484222325');
    expect(fnv1a64('m0')).toBe('08a98a07b55099b8'); // a leading zero kept: always 16 digits
    expect(fnv1a64('a')).toBe('af63dc4c8601ec8c');
    expect(fnv1a64('foobar')).toBe('85944171f73967e8');
  });
});

describe('console', () => {
  it('detects a panic', () => {
    expect(bootFailure('[ 1.0] Kernel panic - not syncing: VFS: Unable to mount root fs')).toMatch(/Kernel panic/);
    expect(bootFailure('[ OK ] Reached target Multi-User System.')).toBeUndefined();
  });
  it('shows the last printable line', () => {
    expect(lastConsoleLine('a\r\n\x1b[0;32m  OK  \x1b[0m Started ssh\r\n\r\n')).toBe('OK   Started ssh');
  });
});

describe('errors and UI', () => {
  it('has distinct exit codes', () => {
    const codes = Object.values(ExitCode);
    expect(new Set(codes).size).toBe(codes.length);
  });
  it('tells an engine that went away from other failures', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:23751'), { code: 'ECONNREFUSED', syscall: 'connect', address: '127.0.0.1' });
    expect(engineLost(refused)).toMatchObject({ exitCode: ExitCode.dockerUnavailable, message: expect.stringMatching(/Lost the Docker engine .*ECONNREFUSED/) });
    expect(engineLost(new Error('socket hang up'))?.hint).toMatch(/Nothing made so far is lost/);
    // A missing file is not a lost engine, nor is an error m5dev already explained.
    expect(engineLost(Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT', syscall: 'open' }))).toBeUndefined();
    expect(engineLost(new UsageError('bad flag'))).toBeUndefined();
  });
  it('knows the engine\'s answer when no address pool is left for a network (Docker, Podman), and nothing else', () => {
    expect(isPoolExhausted('(HTTP code 404) driver not found - could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network')).toBe(true);
    expect(isPoolExhausted('all predefined address pools have been fully subnetted')).toBe(true);
    expect(isPoolExhausted('could not find free subnet from subnet pools')).toBe(true);
    expect(isPoolExhausted('(HTTP code 404) no such network')).toBe(false);
    expect(isPoolExhausted('network with name m5dev-default-1 already exists')).toBe(false);
  });
  it('keeps log tails short', () => {
    expect(tail('1\n2\n3\n4\n', 2)).toBe('3\n4');
  });
  it('chooses a plain renderer for CI and pipes', () => {
    expect(chooseRenderer({}, { CI: 'true' }, true)).toBe('simple');
    expect(chooseRenderer({}, {}, false)).toBe('simple');
    expect(chooseRenderer({}, {}, true)).toBe('default');
    expect(chooseRenderer({ quiet: true }, {}, true)).toBe('silent');
  });
  it('demuxes Docker log frames', () => {
    const frame = (t: number, s: string) => Buffer.concat([Buffer.from([t, 0, 0, 0, 0, 0, 0, s.length]), Buffer.from(s)]);
    expect(demuxBuffer(Buffer.concat([frame(1, 'out\n'), frame(2, 'err\n')]))).toBe('out\nerr\n');
    expect(demuxBuffer(Buffer.from('plain tty text'))).toBe('plain tty text');
  });
  it('validates instance names', () => {
    expect(validateName('dev-1')).toBe('dev-1');
    expect(() => validateName('../etc')).toThrow(/invalid instance name/);
    expect(() => validateName('Dev')).toThrow(/invalid instance name/);
  });
});

describe('download progress line', () => {
  it('changes in 5 % steps', async () => {
    const { progressLine } = await import('../../src/workflows/progress.js');
    const total = 100 * 1048576;
    expect(progressLine(0, total, 1)).toBe('0% of 100 MiB');
    expect(progressLine(total * 0.049, total, 1)).toBe('0% of 100 MiB');
    expect(progressLine(total * 0.05, total, 1)).toBe('5% of 100 MiB');
    expect(progressLine(total, total, 2)).toBe('100% of 100 MiB (attempt 2)');
    expect(progressLine(65 * 1048576, undefined, 1)).toBe('64 MiB');
  });
});

describe('execShortcut', () => {
  it('takes exactly `exec [--name <name>] -- <cmd…>`', () => {
    expect(execShortcut(['exec', '--', 'uname', '-r'])).toEqual({ name: 'default', remote: ['uname', '-r'] });
    expect(execShortcut(['exec', '--name', 'k1', '--', 'true'])).toEqual({ name: 'k1', remote: ['true'] });
    expect(execShortcut(['exec', '--', '--name', 'x'])).toEqual({ name: 'default', remote: ['--name', 'x'] });
  });
  it('leaves every other shape to the full CLI', () => {
    for (const args of [[], ['ssh', '--', 'true'], ['exec', 'true'], ['exec', '--'], ['exec', '--name', 'k1', '--'], ['exec', '--name', '--', 'true'], ['exec', '--name=k1', '--', 'true'], ['exec', '--help'], ['--json', 'exec', '--', 'true'], ['exec', '--name', 'k1', 'x', '--', 'true']]) {
      expect(execShortcut(args), args.join(' ')).toBeUndefined();
    }
  });
});

describe('toolchainStageHash (what kernel and module builds are keyed by)', () => {
  it('follows the toolchain stage and its tools, not the m5ops plugin nor its stage', async () => {
    const { toolchainStageHash } = await import('../../src/docker/build-context.js');
    const { mkdtempSync, mkdirSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const d = mkdtempSync(join(tmpdir(), 'm5dev-stage-'));
    mkdirSync(join(d, 'm5dev-tools'));
    mkdirSync(join(d, 'm5ops'));
    const stage1 = 'FROM ${BASE_IMAGE} AS toolchain\nRUN install\n';
    writeFileSync(join(d, 'Dockerfile'), `${stage1}FROM toolchain AS m5ops\nRUN build\nFROM toolchain\n`);
    writeFileSync(join(d, 'm5dev-tools', 'toolchain.lock'), 'pkg amd64 gcc:amd64 1\n');
    writeFileSync(join(d, 'm5ops', 'm5ops.c'), 'int a;\n');
    const h0 = toolchainStageHash(d, { BASE_IMAGE_ID: 'x' });
    writeFileSync(join(d, 'm5ops', 'm5ops.c'), 'int b;\n');
    writeFileSync(join(d, 'Dockerfile'), `${stage1}FROM toolchain AS m5ops\nRUN build --better\nFROM toolchain\n`);
    expect(toolchainStageHash(d, { BASE_IMAGE_ID: 'x' })).toBe(h0);
    writeFileSync(join(d, 'm5dev-tools', 'toolchain.lock'), 'pkg amd64 gcc:amd64 2\n');
    const h1 = toolchainStageHash(d, { BASE_IMAGE_ID: 'x' });
    expect(h1).not.toBe(h0);
    writeFileSync(join(d, 'Dockerfile'), `FROM \${BASE_IMAGE} AS toolchain\nRUN install more\nFROM toolchain AS m5ops\nRUN build --better\nFROM toolchain\n`);
    expect(toolchainStageHash(d, { BASE_IMAGE_ID: 'x' })).not.toBe(h1);
    expect(toolchainStageHash(d, { BASE_IMAGE_ID: 'y' })).not.toBe(toolchainStageHash(d, { BASE_IMAGE_ID: 'x' }));
  });
});
