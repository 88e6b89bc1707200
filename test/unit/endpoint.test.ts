import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { contextDirName, modemOptions, plaintextWarning, resolveEndpoint, transportOf, type ConfigReader } from '../../src/docker/endpoint.js';
import { normalizeArch, volumeName } from '../../src/engine/engine.js';
import { hostKeyAlgorithms, knownHostsName, lookupKnownHosts, parseKnownHosts, verdict } from '../../src/docker/known-hosts.js';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';

/** A docker config dir held in memory: path → content. */
function reader(files: Record<string, string>): ConfigReader {
  return (p) => files[p];
}

const HOME = '/home/u';
const CFG = join(HOME, '.docker');
const meta = (name: string, host: string, extra: Record<string, unknown> = {}) => ({
  [join(CFG, 'contexts', 'meta', contextDirName(name), 'meta.json')]: JSON.stringify({ Name: name, Metadata: {}, Endpoints: { docker: { Host: host, ...extra } } }),
});

describe('engine endpoint resolution (as the docker CLI)', () => {
  it('defaults to the local socket', () => {
    expect(resolveEndpoint({ HOME }, reader({}))).toEqual({ host: 'unix:///var/run/docker.sock', transport: 'unix', source: 'default' });
    expect(modemOptions(resolveEndpoint({ HOME }, reader({})), reader({}), {})).toEqual({ socketPath: '/var/run/docker.sock' });
  });

  it('takes DOCKER_HOST in every form', () => {
    const r = reader({});
    expect(modemOptions(resolveEndpoint({ HOME, DOCKER_HOST: 'unix:///run/user/1000/docker.sock' }, r), r, {})).toEqual({ socketPath: '/run/user/1000/docker.sock' });
    expect(modemOptions(resolveEndpoint({ HOME, DOCKER_HOST: 'tcp://127.0.0.1:23750' }, r), r, {})).toEqual({ protocol: 'http', host: '127.0.0.1', port: '23750' });
    expect(modemOptions(resolveEndpoint({ HOME, DOCKER_HOST: 'ssh://me@build.example:2222' }, r), r, { SSH_AUTH_SOCK: '/tmp/agent' })).toEqual({
      protocol: 'ssh',
      host: 'build.example',
      port: '2222',
      username: 'me',
      sshOptions: { agent: '/tmp/agent' },
    });
    expect(resolveEndpoint({ HOME, DOCKER_HOST: 'npipe:////./pipe/docker_engine' }, r).transport).toBe('npipe');
    expect(() => transportOf('ftp://x')).toThrow(/unsupported Docker host/);
  });

  it('uses TLS with DOCKER_TLS_VERIFY and the certificates of DOCKER_CERT_PATH', () => {
    const certs = '/certs';
    const r = reader({ [join(certs, 'ca.pem')]: 'CA', [join(certs, 'cert.pem')]: 'CERT', [join(certs, 'key.pem')]: 'KEY' });
    const e = resolveEndpoint({ HOME, DOCKER_HOST: 'tcp://10.0.0.5:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs }, r);
    expect(e.tls).toEqual({ verify: true, caFile: '/certs/ca.pem', certFile: '/certs/cert.pem', keyFile: '/certs/key.pem' });
    expect(modemOptions(e, r, {})).toEqual({ protocol: 'https', host: '10.0.0.5', port: '2376', ca: 'CA', cert: 'CERT', key: 'KEY' });
    // DOCKER_TLS without VERIFY: encrypted, server not verified; certificates default to ~/.docker.
    const r2 = reader({ [join(CFG, 'cert.pem')]: 'C', [join(CFG, 'key.pem')]: 'K' });
    const e2 = resolveEndpoint({ HOME, DOCKER_HOST: 'tcp://h:2376', DOCKER_TLS: '1' }, r2);
    expect(modemOptions(e2, r2, {})).toEqual({ protocol: 'https', host: 'h', port: '2376', cert: 'C', key: 'K', rejectUnauthorized: false });
  });

  it('warns of a plaintext tcp:// engine, on loopback and on the network; never of TLS, ssh or a socket', () => {
    const none: ConfigReader = () => undefined;
    const at = (env: NodeJS.ProcessEnv) => plaintextWarning(resolveEndpoint(env, none));
    expect(at({ DOCKER_HOST: 'tcp://127.0.0.1:2375' })).toMatch(/^the engine tcp:\/\/127\.0\.0\.1:2375 \(DOCKER_HOST\) speaks plain TCP: every local user who can reach that port controls it/);
    expect(at({ DOCKER_HOST: 'tcp://[::1]:2375' })).toMatch(/every local user/);
    expect(at({ DOCKER_HOST: 'tcp://build.example:2375' })).toMatch(/over the network: anyone on the path can read and change what m5dev sends/);
    expect(at({ DOCKER_HOST: 'tcp://build.example:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/nonexistent' })).toBeUndefined();
    expect(at({ DOCKER_HOST: 'ssh://me@build.example' })).toBeUndefined();
    expect(at({})).toBeUndefined();
  });

  it('follows DOCKER_CONTEXT, then the current context of config.json; DOCKER_HOST wins over both', () => {
    const files = { ...meta('remote', 'tcp://192.0.2.1:2375'), ...meta('lab', 'ssh://ci@lab'), [join(CFG, 'config.json')]: JSON.stringify({ currentContext: 'lab' }) };
    const r = reader(files);
    expect(resolveEndpoint({ HOME, DOCKER_CONTEXT: 'remote' }, r)).toMatchObject({ host: 'tcp://192.0.2.1:2375', source: 'context remote', context: 'remote' });
    expect(resolveEndpoint({ HOME }, r)).toMatchObject({ host: 'ssh://ci@lab', transport: 'ssh', context: 'lab' });
    expect(resolveEndpoint({ HOME, DOCKER_HOST: 'unix:///x.sock', DOCKER_CONTEXT: 'remote' }, r)).toMatchObject({ host: 'unix:///x.sock', source: 'DOCKER_HOST' });
    expect(resolveEndpoint({ HOME, DOCKER_CONTEXT: 'default' }, r).source).toBe('default');
    // DOCKER_CONFIG moves the whole store.
    expect(resolveEndpoint({ HOME: '/elsewhere', DOCKER_CONFIG: CFG, DOCKER_CONTEXT: 'remote' }, r).host).toBe('tcp://192.0.2.1:2375');
  });

  it('reads a context\'s TLS material from the context store', () => {
    const tls = join(CFG, 'contexts', 'tls', contextDirName('secure'), 'docker');
    const r = reader({ ...meta('secure', 'tcp://h:2376', { SkipTLSVerify: false }), [join(tls, 'ca.pem')]: 'CA', [join(tls, 'cert.pem')]: 'CERT', [join(tls, 'key.pem')]: 'KEY' });
    const e = resolveEndpoint({ HOME, DOCKER_CONTEXT: 'secure' }, r);
    expect(modemOptions(e, r, {})).toEqual({ protocol: 'https', host: 'h', port: '2376', ca: 'CA', cert: 'CERT', key: 'KEY' });
  });

  it('says what to do about a missing or broken context', () => {
    expect(() => resolveEndpoint({ HOME, DOCKER_CONTEXT: 'nope' }, reader({}))).toThrow(/context "nope" does not exist/);
    const broken = reader({ [join(CFG, 'contexts', 'meta', contextDirName('b'), 'meta.json')]: '{' });
    expect(() => resolveEndpoint({ HOME, DOCKER_CONTEXT: 'b' }, broken)).toThrow(/unreadable meta.json/);
    expect(() => resolveEndpoint({ HOME }, reader({ [join(CFG, 'config.json')]: 'not json' }))).toThrow(/config.json is not valid JSON/);
  });

  it('context names hash as the docker CLI stores them', () => {
    // sha256("default")
    expect(contextDirName('default')).toBe('37a8eec1ce19687d132fe29051dca629d164e2c4958ba141d5f4133a33f0688f');
  });
});

describe('engine facts', () => {
  it('spells architectures one way and keeps volumes of two homes apart', () => {
    expect([normalizeArch('amd64'), normalizeArch('arm64'), normalizeArch('aarch64'), normalizeArch('x86_64')]).toEqual(['x86_64', 'aarch64', 'aarch64', 'x86_64']);
    expect(volumeName('/a', 'instance', 'dev')).toMatch(/^m5dev-[0-9a-f]{8}-instance-dev$/);
    expect(volumeName('/a', 'blobs')).not.toBe(volumeName('/b', 'blobs'));
  });
});

describe('ssh:// engine host keys (known-hosts.ts)', () => {
  const key = Buffer.from('the ed25519 key blob');
  const out = [
    '# Host [h]:2222 found: line 3',
    `|1|salt=|hash= ssh-ed25519 ${key.toString('base64')}`,
    `@revoked [h]:2222 ssh-rsa ${Buffer.from('old').toString('base64')}`,
    `@cert-authority *.example ssh-ed25519 ${Buffer.from('ca').toString('base64')}`,
    '',
  ].join('\n');
  it('reads what ssh-keygen -F prints: keys, revoked keys; certificate authorities are not host keys', () => {
    expect(parseKnownHosts(out)).toEqual({ keys: [{ type: 'ssh-ed25519', blob: key.toString('base64') }], revoked: [Buffer.from('old').toString('base64')] });
    expect(knownHostsName('h', 22)).toBe('h');
    expect(knownHostsName('h', 2222)).toBe('[h]:2222');
  });
  it('skips comments, blank and short lines wherever their blanks are', () => {
    const b = (s: string) => Buffer.from(s).toString('base64');
    const text = [`\t  h ssh-ed25519   ${b('k1')}  comment here`, `# h ssh-ed25519 ${b('commented')}`, '   ', 'h ssh-ed25519', `@revoked\th\tssh-rsa\t${b('r')}`, `@revoked h ssh-rsa`].join('\n');
    expect(parseKnownHosts(text)).toEqual({ keys: [{ type: 'ssh-ed25519', blob: b('k1') }], revoked: [b('r')] });
  });
  it("asks OpenSSH's own ssh-keygen -F for the host's entries in ~/.ssh/known_hosts (hashed names and [host]:port too)", () => {
    const home = mkdtempSync(join(tmpdir(), 'm5dev-kh-'));
    try {
      mkdirSync(join(home, '.ssh'));
      expect(lookupKnownHosts('h', 2222, home)).toEqual({ keys: [], revoked: [] }); // no file: nothing on record
      const b = (s: string) => Buffer.from(s).toString('base64');
      writeFileSync(join(home, '.ssh', 'known_hosts'), [`[h]:2222 ssh-ed25519 ${b('mine')}`, `h ssh-ed25519 ${b('port 22')}`, `other ssh-ed25519 ${b('theirs')}`, `@revoked [h]:2222 ssh-ed25519 ${b('old')}`, ''].join('\n'));
      expect(lookupKnownHosts('h', 2222, home)).toEqual({ keys: [{ type: 'ssh-ed25519', blob: b('mine') }], revoked: [b('old')] });
      expect(lookupKnownHosts('h', 22, home)).toEqual({ keys: [{ type: 'ssh-ed25519', blob: b('port 22') }], revoked: [] });
      expect(lookupKnownHosts('nobody', 22, home)).toEqual({ keys: [], revoked: [] });
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
  it('judges the key a host shows', () => {
    const known = parseKnownHosts(out);
    expect(verdict(known, key)).toBe('known');
    expect(verdict(known, Buffer.from('another'))).toBe('changed');
    expect(verdict(known, Buffer.from('old'))).toBe('revoked');
    expect(verdict({ keys: [], revoked: [] }, key)).toBe('unknown');
  });
  it('asks for the key types on record (rsa by its sha2 signatures first), else leaves the defaults', () => {
    expect(hostKeyAlgorithms({ keys: [{ type: 'ssh-rsa', blob: 'x' }, { type: 'ssh-ed25519', blob: 'y' }, { type: 'sk-ssh-ed25519@openssh.com', blob: 'z' }], revoked: [] })).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'ssh-ed25519']);
    expect(hostKeyAlgorithms({ keys: [], revoked: [] })).toBeUndefined();
    // Each algorithm once, whatever the number of keys of a type; every type ssh2 speaks.
    const k = (type: string) => ({ type, blob: type });
    expect(hostKeyAlgorithms({ keys: [k('ssh-ed25519'), k('ssh-ed25519'), k('ssh-rsa'), k('ssh-rsa'), k('ecdsa-sha2-nistp256'), k('ecdsa-sha2-nistp384'), k('ecdsa-sha2-nistp521')], revoked: [] })).toEqual([
      'ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521',
    ]);
    expect(hostKeyAlgorithms({ keys: [k('sk-ssh-ed25519@openssh.com')], revoked: [] })).toBeUndefined();
  });
  it('without ssh-keygen there is no record to check against (undefined, not "nothing on record"), with or without a known_hosts file', () => {
    const home = mkdtempSync(join(tmpdir(), 'm5dev-kh-'));
    const path = process.env.PATH;
    try {
      process.env.PATH = '/nonexistent-m5dev-path';
      expect(lookupKnownHosts('h', 22, home)).toBeUndefined();
      mkdirSync(join(home, '.ssh'));
      writeFileSync(join(home, '.ssh', 'known_hosts'), `h ssh-ed25519 ${Buffer.from('k').toString('base64')}\n`);
      expect(lookupKnownHosts('h', 22, home)).toBeUndefined();
    } finally {
      process.env.PATH = path;
      rmSync(home, { recursive: true, force: true });
    }
  });
});
