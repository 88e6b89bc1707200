/**
 * A `DOCKER_HOST=ssh://` engine, as the docker CLI reaches one: over real SSH (an ssh2 server on
 * loopback that answers `docker system dial-stdio` by relaying to this machine's engine socket).
 * m5dev talks to it only when the host key it shows is the one OpenSSH has on record (plain or
 * hashed known_hosts entries, `[host]:port`); an unknown or changed key is refused (exit 20)
 * before a single request reaches the engine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { cli } from '../helpers/cli.js';

const { Server, utils } = ssh2;
const hostKey = utils.generateKeyPairSync('ed25519');
const otherKey = utils.generateKeyPairSync('ed25519');
let server: InstanceType<typeof Server>;
let port = 0;
let home = '';
/** Requests that reached the engine through the relay. */
let relayed = 0;

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'm5dev-sshengine-'));
  mkdirSync(join(home, '.ssh'), { mode: 0o700 });
  server = new Server({ hostKeys: [hostKey.private] }, (client) => {
    client.on('authentication', (ctx) => ctx.accept());
    client.on('ready', () => {
      client.on('session', (accept) => {
        accept().once('exec', (acceptExec, _reject, info) => {
          const stream = acceptExec();
          if (info.command !== 'docker system dial-stdio') return stream.exit(127), stream.end();
          relayed++;
          const engine = connect('/var/run/docker.sock');
          stream.pipe(engine).pipe(stream);
          engine.on('close', () => stream.end());
          stream.on('close', () => engine.destroy());
        });
      });
    });
    client.on('error', () => undefined);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => {
  server?.close();
  rmSync(home, { recursive: true, force: true });
});

const knownHosts = (text: string) => writeFileSync(join(home, '.ssh', 'known_hosts'), text);
const entry = (key: { public: string }) => `[127.0.0.1]:${port} ${key.public.trim()}\n`;
const status = () => cli(['status'], { HOME: home, M5DEV_HOME: join(home, 'm5dev'), DOCKER_HOST: `ssh://tester@127.0.0.1:${port}`, DOCKER_CONTEXT: '', SSH_AUTH_SOCK: '' });

/** With this known_hosts: m5dev must refuse the engine (exit 20) before a request reaches it; its stderr. */
async function refusedWith(known: string): Promise<string> {
  knownHosts(known);
  const res = await status();
  expect(res.code, res.stderr).toBe(20);
  expect(relayed).toBe(0);
  return res.stderr;
}

describe('an ssh:// engine', () => {
  it('is refused while its host key is not on record, and no request reaches the engine', async () => {
    const stderr = await refusedWith('');
    expect(stderr).toMatch(new RegExp(`the SSH host key of the engine host \\[127\\.0\\.0\\.1\\]:${port} is not in known_hosts`));
    expect(stderr).toMatch(new RegExp(`hint: Connect once with \`ssh -p ${port} tester@127\\.0\\.0\\.1 true\``));
  }, 60_000);

  it('is refused when its host key differs from the one on record', async () => {
    expect(await refusedWith(entry(otherKey))).toMatch(/showed an SSH host key that differs from the one in known_hosts/);
  }, 60_000);

  it('is refused when its host key is marked @revoked', async () => {
    expect(await refusedWith(`@revoked ${entry(hostKey)}${entry(otherKey)}`)).toMatch(/showed an SSH host key marked @revoked/);
  }, 60_000);

  it('is refused when ssh-keygen is missing, so that no key can be checked (nothing reaches the engine)', async () => {
    knownHosts(entry(hostKey));
    const before = relayed;
    const res = await cli(['status'], { HOME: home, M5DEV_HOME: join(home, 'm5dev'), DOCKER_HOST: `ssh://tester@127.0.0.1:${port}`, DOCKER_CONTEXT: '', SSH_AUTH_SOCK: '', PATH: join(home, 'no-tools') });
    expect(res.code, res.stderr).toBe(20);
    expect(res.stderr).toMatch(/cannot check the SSH host key of \[127\.0\.0\.1\]:\d+: ssh-keygen \(OpenSSH\) is not installed/);
    expect(res.stderr).toMatch(/hint: Install the OpenSSH client/);
    expect(relayed).toBe(before);
  }, 60_000);

  it('is used when its host key is on record, in a plain or a hashed known_hosts entry', async () => {
    knownHosts(entry(hostKey));
    const plain = await status();
    expect(plain.code, plain.stderr).toBe(0);
    expect(relayed).toBeGreaterThan(0);
    execFileSync('ssh-keygen', ['-H', '-f', join(home, '.ssh', 'known_hosts')], { stdio: 'ignore' });
    const before = relayed;
    const hashed = await status();
    expect(hashed.code, hashed.stderr).toBe(0);
    expect(relayed).toBeGreaterThan(before);
  }, 60_000);
});
