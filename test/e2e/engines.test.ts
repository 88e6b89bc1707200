/**
 * The e2e core on the engines that share this machine's files but are not a rootful Docker:
 * Podman's Docker-compatible socket (rootful), and rootless Docker run by a normal user who
 * installed m5dev with `npm install -g` of the packed tarball (no make, no root). Each: up from the
 * fixture with the default raw disk, exec, ssh through the generated ssh-config, suspend → resume,
 * down, destroy; the user owns and can delete every instance file (a checkpoint its agent saved too).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { ROOT, cli, type CliResult } from '../helpers/cli.js';
import { serveDir, type FileServer } from '../helpers/http-server.js';
import { kernelBuildArgs, kernelTarball, kernelTestHome, runInstanceName, sweepDeadRunInstances } from '../helpers/kernel.js';
import { freePort } from '../helpers/fixture.js';
import { buildM5op } from '../helpers/m5op.js';
import { expectShareHoldsTheLine } from '../helpers/share-boundary.js';
import { containersOn, engineFixture, startRegistry, stopRegistry } from '../helpers/engines.js';
import { ensureUser, homeOf, installForUser, userCli, type UserInstall } from '../helpers/user.js';

let server: FileServer;
let imageUrl: string;
let toolchain: string;

beforeAll(async () => {
  ({ server, imageUrl, toolchain } = await engineFixture());
}, 1_800_000);

afterAll(async () => {
  await server?.close();
});

interface Kind {
  run: (args: string[]) => Promise<CliResult>;
  /** ssh with the generated config, as the user who owns the instance. */
  ssh: (configFile: string, args: string[]) => string;
  docker: Docker;
  home: string;
}

/** After a kind's tests: its instance destroyed, any container of its home gone, a user's home dir removed. */
async function cleanUp(run: Kind['run'], docker: Docker, home: string, removeHome: boolean): Promise<void> {
  await run(['destroy']);
  for (const c of await containersOn(docker, home)) await docker.getContainer(c.Id).remove({ force: true });
  if (removeHome) execFileSync('rm', ['-rf', home]);
}

function engineScript(name: string, images: string[], env: NodeJS.ProcessEnv = {}): string {
  return execFileSync('bash', [join(ROOT, 'scripts', 'engines', name), 'start', ...images], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } }).trim();
}

/** The e2e core, against one engine kind. */
function core(kind: () => Kind, product: 'docker' | 'podman', rootless: boolean): void {
  it('boots the fixture (default raw disk) and runs guest commands', async () => {
    const k = kind();
    const res = await k.run(['--json', 'up', '--image-url', imageUrl, '--boot-timeout', '600']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/Copy the cloud image to the engine \[SKIPPED: the engine reads the client's blob cache\]/);
    const uname = await k.run(['exec', '--', 'uname', '-m']);
    expect(uname.code, uname.stderr).toBe(0);
    expect(uname.stdout.trim()).toBe('aarch64');
    const status = JSON.parse((await k.run(['--json', 'status', '--name', 'default'])).stdout) as Record<string, unknown>;
    expect(status).toMatchObject({ state: 'running', files: 'shared', engine: { product, rootless } });
  }, 900_000);

  it('ssh works through the generated ssh-config', async () => {
    const k = kind();
    const cfg = await k.run(['ssh-config']);
    expect(cfg.code, cfg.stderr).toBe(0);
    expect(cfg.stdout).not.toContain('ProxyCommand');
    const file = join(mkdtempSync(join(tmpdir(), 'm5dev-cfg-')), 'config');
    writeFileSync(file, cfg.stdout);
    chmodSync(join(file, '..'), 0o755);
    chmodSync(file, 0o644);
    expect(k.ssh(file, ['echo', 'ok']).trim()).toBe('ok');
  }, 120_000);

  it('suspends and resumes where it was', async () => {
    const k = kind();
    const token = `engine-${Date.now()}`;
    const before = await k.run(['exec', '--', `echo ${token} > /dev/shm/marker; cat /proc/sys/kernel/random/boot_id`]);
    expect(before.code, before.stderr).toBe(0);
    const sus = await k.run(['suspend']);
    expect(sus.code, sus.stderr).toBe(0);
    expect(await containersOn(k.docker, k.home)).toEqual([]);
    const up = await k.run(['--json', 'up']);
    expect(up.code, up.stderr).toBe(0);
    expect(JSON.parse(up.stdout)).toMatchObject({ resumed: true });
    const after = await k.run(['exec', '--', 'cat /dev/shm/marker /proc/sys/kernel/random/boot_id']);
    expect(after.stdout.trim().split('\n')).toEqual([token, before.stdout.trim()]);
  }, 600_000);

  it('down and destroy leave nothing, and every file was the user\'s own', async () => {
    const k = kind();
    const dir = join(k.home, 'instances', 'default');
    const owner = statSync(k.home).uid;
    const foreign = readdirSync(dir).filter((f) => statSync(join(dir, f)).uid !== owner);
    expect(foreign).toEqual([]);
    const down = await k.run(['down']);
    expect(down.code, down.stderr).toBe(0);
    expect(await containersOn(k.docker, k.home)).toEqual([]);
    const destroy = await k.run(['destroy']);
    expect(destroy.code, destroy.stderr).toBe(0);
    expect(existsSync(dir)).toBe(false);
  }, 180_000);
}

describe('Podman (rootful, Docker-compatible socket)', () => {
  let k: Kind;
  let podmanHost: string;
  let pinned: string;
  let pushed: CliResult;
  let registryDir: string;
  let registry: string | undefined;
  beforeAll(async () => {
    // The toolchain reaches Podman through a registry, pinned by digest: `image push` here, `image pull` there.
    registryDir = mkdtempSync(join(tmpdir(), 'm5dev-registry-'));
    registry = await startRegistry(registryDir);
    pushed = await cli(['--json', 'image', 'push', `${registry}/m5dev/toolchain:e2e`], { DOCKER_HOST: '' });
    if (pushed.code !== 0) throw new Error(`image push failed: ${pushed.stderr}`);
    pinned = (JSON.parse(pushed.stdout) as { ref: string }).ref;
    // This run's registry port: Podman trusts plain HTTP only from a registry its registries.conf names.
    const host = (podmanHost = engineScript('podman-engine.sh', [], { M5DEV_TEST_REGISTRY: registry }));
    const home = mkdtempSync(join(tmpdir(), 'm5dev-podman-'));
    k = {
      // Every command on Podman uses the pulled image by its digest (M5DEV_TOOLCHAIN, as --toolchain).
      run: (args) => cli(args, { M5DEV_HOME: home, DOCKER_HOST: host, M5DEV_TOOLCHAIN: pinned }),
      ssh: (file, args) => execFileSync('ssh', ['-F', file, '-o', 'BatchMode=yes', 'm5dev-default', ...args], { encoding: 'utf8' }),
      docker: new Docker({ socketPath: host.slice('unix://'.length) }),
      home,
    };
  }, 600_000);
  afterAll(async () => {
    if (k) await cleanUp(k.run, k.docker, k.home, false);
    if (registryDir) stopRegistry(registryDir);
    // The tag the push left on the local engine names this run's port: nothing else will use it.
    if (registry) await new Docker().getImage(`${registry}/m5dev/toolchain:e2e`).remove({ noprune: true }).catch(() => undefined);
  });

  it('image push names the pushed image by digest; the toolchain is pulled by it: the image the local engine built, byte for byte', async () => {
    // The push (in beforeAll: every test here needs it) printed REF@sha256:… of the registry's manifest.
    expect(pushed.stdout).toBe(`${JSON.stringify({ ref: pinned }, null, 2)}\n`);
    expect(pinned).toMatch(new RegExp(`^${registry!.replace(/\./g, '\\.')}/m5dev/toolchain@sha256:[0-9a-f]{64}$`));
    const local = await new Docker().getImage(toolchain).inspect();
    for (const ref of [pinned, toolchain]) await k.docker.getImage(ref).remove({ force: true }).catch(() => undefined);
    const pulled = await cli(['--json', 'image', 'pull', pinned], { DOCKER_HOST: podmanHost });
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(JSON.parse(pulled.stdout)).toMatchObject({ tag: toolchain, imageId: local.Id });
    const unpinned = await cli(['image', 'pull', pinned.replace(/@sha256:.*$/, ':e2e')], { DOCKER_HOST: podmanHost });
    expect(unpinned.code).toBe(2);
    expect(unpinned.stderr).toMatch(/is not pinned by digest/);
  }, 600_000);

  core(() => k, 'podman', false);

  it('runs the module loop on the kernel the local engine built (the same cache, no second build)', async () => {
    const kt = kernelTarball();
    const mirror = await serveDir(kt.dir);
    const kenv = { M5DEV_HOME: kernelTestHome(), DOCKER_HOST: podmanHost, M5DEV_TOOLCHAIN: pinned };
    const pkmod = runInstanceName('pkmod'); // this run's own instance in the shared kernel home
    await sweepDeadRunInstances(kenv.M5DEV_HOME, 'pkmod', kenv);
    const share = mkdtempSync(join(tmpdir(), 'm5dev-podman-share-'));
    chmodSync(share, 0o777); // the guest user makes the link
    try {
      const args = kernelBuildArgs(kt, `${mirror.url}/${kt.file}`);
      expect((await cli(args, { ...kenv, DOCKER_HOST: '', M5DEV_TOOLCHAIN: '' })).code).toBe(0); // built (or found) on the local engine
      const build = await cli(args, kenv);
      expect(build.code, build.stderr).toBe(0);
      expect(build.stderr).toMatch(/cached: .* built from these inputs/);
      const up = await cli(['up', '--name', pkmod, '--kernel', kt.version, '--image-url', imageUrl, '--disk', 'overlay', '--ssh-port', String(await freePort()), '--boot-timeout', '600', '--share', `${share}:/opt/share`], kenv);
      expect(up.code, up.stderr).toBe(0);
      // The host boundary on Podman too: what guest root plants in a share stays plain on the host.
      await expectShareHoldsTheLine((c) => cli(['exec', '--name', pkmod, '--', c], kenv), '/opt/share', share);
      const res = await cli(['--json', 'module', 'test', '--name', pkmod], kenv);
      expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);
      expect(JSON.parse(res.stdout)).toMatchObject({ modules: ['m5.ko'], test: { passed: 6, planned: 6 } });
    } finally {
      await cli(['destroy', '--name', pkmod], kenv);
      rmSync(share, { recursive: true, force: true });
      await mirror.close();
      rmSync(kt.dir, { recursive: true, force: true });
    }
  }, 1_800_000);
});

describe('rootless Docker, m5dev installed with npm by a normal user', () => {
  let k: Kind;
  let user: string;
  let install: UserInstall;
  beforeAll(() => {
    const [u, host] = engineScript('rootless-engine.sh', [toolchain]).split(' ') as [string, string];
    user = u;
    install = installForUser(user);
    const bin = install.bin;
    const home = join(homeOf(user), `m5dev-e2e-${process.pid}-${Date.now()}`);
    k = {
      run: (args) => userCli(user, bin, args, { M5DEV_HOME: home, DOCKER_HOST: host, XDG_RUNTIME_DIR: host.slice('unix://'.length, -'/docker.sock'.length) }),
      ssh: (file, args) => execFileSync('su', ['-', user, '-c', ['ssh', '-F', file, '-o', 'BatchMode=yes', 'm5dev-default', ...args].join(' ')], { encoding: 'utf8' }),
      docker: new Docker({ socketPath: host.slice('unix://'.length) }),
      home,
    };
  }, 900_000);
  afterAll(async () => {
    if (k) await cleanUp(k.run, k.docker, k.home, true);
    install?.remove();
  });
  it('installs from the packed tarball as the user, without root: the files are the user\'s, and it runs as this checkout\'s version', async () => {
    const prefix = install.prefix;
    const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
    const installed = execFileSync('find', [prefix, '!', '-uid', String(uid)], { encoding: 'utf8' }).trim();
    expect(installed).toBe(''); // nothing in the prefix belongs to anyone but the user
    const v = await k.run(['--version']);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout.trim()).toBe((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
  });
  core(() => k, 'docker', true);
});

describe('a normal user in the docker group (the local rootful engine), m5dev installed with npm', () => {
  const user = 'm5dev-user';
  let install: UserInstall | undefined;
  let home: string;
  const docker = new Docker();
  const run = (args: string[]) => userCli(user, install!.bin, args, { M5DEV_HOME: home });
  beforeAll(() => {
    ensureUser(user, ['docker']);
    install = installForUser(user);
    home = join(homeOf(user), `m5dev-e2e-${process.pid}-${Date.now()}`);
  }, 600_000);
  afterAll(async () => {
    if (install) await cleanUp(run, docker, home, true);
    install?.remove();
  });

  it('doctor finds everything in order', async () => {
    const res = await run(['--json', 'doctor']);
    expect(res.code, `${res.stdout}${res.stderr}`).toBe(0);
    const out = JSON.parse(res.stdout) as { ok: boolean; engine: { rootless: boolean; source: string }; checks: { name: string; status: string; detail: string }[] };
    expect(out.ok).toBe(true);
    expect(out.engine).toMatchObject({ rootless: false, source: 'default' });
    expect(out.checks.find((c) => c.name === 'files')?.detail).toMatch(/sees this machine's files/);
    expect(out.checks.find((c) => c.name === 'toolchain image')?.status).toBe('ok');
  }, 120_000);

  it('up, exec, a checkpoint, down, destroy: the user reads and deletes every instance file', async () => {
    const up = await run(['up', '--image-url', imageUrl, '--ssh-port', String(await freePort()), '--boot-timeout', '600', '--m5ops-checkpoints']);
    expect(up.code, up.stderr).toBe(0);
    const uname = await run(['exec', '--', 'uname', '-m']);
    expect(uname.stdout.trim()).toBe('aarch64');
    const dir = join(home, 'instances', 'default');
    const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
    // The checkpoint agent runs as the user (installed m5dev, its own process) and saves the guest's checkpoint.
    const m5op = await buildM5op(toolchain);
    chmodSync(join(m5op, '..'), 0o755);
    expect((await run(['cp', m5op, 'default:/home/ubuntu'])).code).toBe(0);
    const op = await run(['exec', '--', 'sudo ./m5op op 0x43 0 0 >/dev/null && echo ran-on']);
    expect(op.stdout.trim(), op.stderr).toBe('ran-on');
    expect(JSON.parse((await run(['--json', 'checkpoints', '--name', 'default'])).stdout)).toMatchObject([{ index: 1, disk: 'raw' }]);
    const agentPid = Number(readFileSync(join(dir, 'checkpoint-agent.pid'), 'utf8').trim());
    expect(statSync(`/proc/${agentPid}`).uid).toBe(uid);
    expect(readdirSync(join(dir, 'checkpoints', '1')).sort()).toEqual(['disk.raw', 'flash1.img', 'ram', 'record.json', 'vmstate']);
    // What the tools made is chowned to the user; QEMU's own console and socket stay root's, in the
    // user's 0700 directory, world-readable.
    expect(statSync(dir).uid).toBe(uid);
    expect(readdirSync(dir).filter((f) => statSync(join(dir, f)).uid !== uid).sort()).toEqual(['console.log', 'qmp.sock']);
    expect(statSync(join(dir, 'console.log')).mode & 0o004).toBe(0o004);
    // `m5dev cp` out of the guest: the copies belong to the user who ran it (as with docker cp), not to root or the guest's uid.
    const dest = join(homeOf(user), `m5dev-cp-${Date.now()}`);
    const cp = await run(['cp', 'default:/etc/hostname', dest]);
    expect(cp.code, cp.stderr).toBe(0);
    expect(statSync(dest).uid).toBe(uid);
    rmSync(dest, { force: true });
    const down = await run(['down']);
    expect(down.code, down.stderr).toBe(0);
    expect(await containersOn(docker, home)).toEqual([]);
    const destroy = await run(['destroy']);
    expect(destroy.code, destroy.stderr).toBe(0);
    expect(existsSync(dir)).toBe(false);
  }, 900_000);

  it('QEMU runs as the user: a share gives the guest no more than the user has; suspend and resume work as the user', async () => {
    // The kernel the local engine built, copied into the user's home (as a CI cache restore would), not rebuilt.
    const kt = kernelTarball();
    const mirror = await serveDir(kt.dir);
    try {
      // Built (or found) in the shared kernel home first: kernel-build.test.ts may still be building it (this waits for its lock).
      const built = await cli(kernelBuildArgs(kt, `${mirror.url}/${kt.file}`), { M5DEV_HOME: kernelTestHome() });
      expect(built.code, built.stderr).toBe(0);
    } finally {
      await mirror.close();
      rmSync(kt.dir, { recursive: true, force: true });
    }
    const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
    execFileSync('mkdir', ['-p', home]);
    execFileSync('cp', ['-a', join(kernelTestHome(), 'kernels'), join(home, 'kernels')]);
    execFileSync('chown', ['-R', `${uid}:${gid}`, home]);
    const share = join(homeOf(user), `m5dev-share-${Date.now()}`);
    execFileSync('su', ['-', user, '-c', `mkdir -m 0777 ${share}`]);
    // A file the user cannot read (root's, 0600) and one it can: the guest, even as root, reads only the latter.
    writeFileSync(join(share, 'roots-secret'), 'not for the user\n', { mode: 0o600 });
    writeFileSync(join(share, 'shared'), 'for everyone\n', { mode: 0o644 });
    const exec = (c: string) => run(['exec', '--name', 'ukmod', '--', c]);
    try {
      const up = await run(['up', '--name', 'ukmod', '--kernel', kt.version, '--image-url', imageUrl, '--disk', 'overlay', '--ssh-port', String(await freePort()), '--boot-timeout', '600', '--share', `${share}:/opt/share`]);
      expect(up.code, up.stderr).toBe(0);
      const read = await exec('cat /opt/share/shared; sudo cat /opt/share/roots-secret || echo refused');
      expect(read.stdout).toMatch(/^for everyone\n(.*\n)?refused\n$/);
      await expectShareHoldsTheLine(exec, '/opt/share', share, uid);
      // QEMU writes the saved state as the user, and reads it back on resume.
      expect((await exec('echo before > /dev/shm/mark')).code).toBe(0);
      const sus = await run(['suspend', '--name', 'ukmod']);
      expect(sus.code, sus.stderr).toBe(0);
      const back = await run(['--json', 'up', '--name', 'ukmod']);
      expect(back.code, back.stderr).toBe(0);
      expect(JSON.parse(back.stdout)).toMatchObject({ resumed: true });
      expect((await exec('cat /dev/shm/mark /opt/share/shared')).stdout).toBe('before\nfor everyone\n');
    } finally {
      await run(['destroy', '--name', 'ukmod']);
      rmSync(share, { recursive: true, force: true });
    }
  }, 1_200_000);
});
