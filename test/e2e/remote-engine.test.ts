/**
 * The guest workflow on an engine that cannot see the client's files or share its loopback: a
 * dockerd in a container, reached only at tcp://127.0.0.1:PORT (as a remote build host, Docker
 * Desktop's VM or a CI dind service). The toolchain image is copied in, not rebuilt; the cloud
 * image crosses the client↔engine link once, verified there; SSH goes through the Engine API.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { kernelBuildArgs, kernelTarball, kernelTestHome, runInstanceName, sweepDeadRunInstances, type KernelTarball } from '../helpers/kernel.js';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import type Docker from 'dockerode';
import { cli, ROOT, startCli } from '../helpers/cli.js';
import { serveDir, type FileServer } from '../helpers/http-server.js';
import { containersOn, engineFixture, fillAddressPools, startRemoteEngine, stopRemoteEngine, volumesOfHome } from '../helpers/engines.js';
import { networksOn } from '../helpers/docker.js';
import { gem5Standin } from '../helpers/gem5-standin.js';
import { buildM5op } from '../helpers/m5op.js';
import { fileWhenMatching } from '../helpers/wait.js';
import type { Fixture } from '../helpers/fixture.js';

let server: FileServer;
let home: string;
let env: NodeJS.ProcessEnv;
let remote: { host: string; docker: Docker };
let imageUrl: string;
let toolchain: string;
let fx: Fixture;

beforeAll(async () => {
  ({ server, imageUrl, toolchain, fx } = await engineFixture());
  remote = startRemoteEngine([]); // the toolchain goes in by `m5dev image save` → `image load` (the first test)
  home = mkdtempSync(join(tmpdir(), 'm5dev-remote-'));
  env = { M5DEV_HOME: home, DOCKER_HOST: remote.host };
}, 1_800_000);

afterAll(async () => {
  if (remote) {
    await cli(['destroy'], env);
    for (const c of await containersOn(remote.docker, home)) await remote.docker.getContainer(c.Id).remove({ force: true });
    for (const v of await volumesOfHome(remote.docker, home)) await remote.docker.getVolume(v).remove({ force: true });
    // The engine's container goes too (its data volume stays, so the next run starts warm).
    stopRemoteEngine();
  }
  await server?.close();
});

const clientFiles = () => readdirSync(join(home, 'instances', 'default')).sort();

describe('a remote engine (tcp://, its own filesystem and network)', () => {
  it('gets the toolchain image by `image save` → `image load`, verified by the archive\'s SHA-256 and the image ID', async () => {
    const archive = join(mkdtempSync(join(tmpdir(), 'm5dev-archive-')), 'toolchain.tar');
    const saved = await cli(['--json', 'image', 'save', archive], { M5DEV_HOME: home });
    expect(saved.code, saved.stderr).toBe(0);
    const { sha256, imageId, tag } = JSON.parse(saved.stdout) as { sha256: string; imageId: string; tag: string };
    expect(tag).toBe(toolchain);
    await remote.docker.getImage(toolchain).remove({ force: true }).catch(() => undefined);
    // A damaged archive: refused before a byte reaches the engine.
    const bad = await cli(['image', 'load', archive, '--sha256', sha256.replace(/^./, (c) => (c === '0' ? '1' : '0'))], env);
    expect(bad.code, bad.stderr).toBe(6);
    expect(bad.stderr).toMatch(/Nothing was loaded/);
    await expect(remote.docker.getImage(toolchain).inspect()).rejects.toThrow();
    const loaded = await cli(['--json', 'image', 'load', archive, '--sha256', sha256], env);
    expect(loaded.code, loaded.stderr).toBe(0);
    expect(JSON.parse(loaded.stdout)).toMatchObject({ verified: true, images: [{ tag: toolchain, imageId }] });
    rmSync(archive);
    // The engine now has exactly this toolchain: nothing is built there.
    const build = await cli(['--json', 'image', 'build'], env);
    expect(JSON.parse(build.stdout)).toMatchObject({ tag: toolchain, imageId, cached: true });
  }, 900_000);

  it('boots the fixture with the default raw disk, the engine going away mid-boot costing nothing: disks live on the engine, keys on the client', async () => {
    // This engine cannot see the client's directories: a share is refused before anything boots, pointing at cp.
    const shared = await cli(['up', '--image-url', imageUrl, '--share', ROOT], env);
    expect(shared.code, shared.stderr).toBe(18);
    expect(shared.stderr).toMatch(/cannot see this machine's files, so it cannot share/);
    expect(shared.stderr).toMatch(/m5dev cp DIR guest:PATH/);
    // The engine goes away while the guest boots (keys, seed, flash and disk are made, QEMU runs):
    // a clear error, and the next up continues from what was made (one boot serves both).
    const args = ['--json', 'up', '--image-url', imageUrl, '--boot-timeout', '600'];
    const run = startCli(args, env);
    const deadline = Date.now() + 300_000;
    let booting = false;
    while (!booting && Date.now() < deadline) {
      booting = (await containersOn(remote.docker, home)).some((c) => c.Labels['dev.m5dev.role'] === 'vm' && c.State === 'running');
      if (!booting) await new Promise((r) => setTimeout(r, 250));
    }
    expect(booting).toBe(true);
    stopRemoteEngine();
    const lost = await run.done;
    expect(lost.code, lost.stderr).toBe(3);
    expect(lost.stderr).toMatch(/Lost the Docker engine during the command/);
    expect(lost.stderr).not.toMatch(/bug in m5dev/);
    expect(lost.stderr).toMatch(/Docker engine: docker .* at tcp:\/\/127\.0\.0\.1:\d+ \(DOCKER_HOST\)/);
    expect(lost.stderr).toMatch(/Copied the cloud image to the engine \(verified there/);
    expect(lost.stderr).toMatch(/Instance disk: raw copy, grown \+10G/);
    // Back (same data): the disk and keys made before are kept, and the guest boots.
    remote = startRemoteEngine([]);
    const res = await cli(args, env);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ accel: 'tcg', cpu: 'cortex-a57', resumed: false });
    expect(res.stderr).toMatch(/Instance disk \[SKIPPED: cached/);
    expect(res.stderr).toMatch(/SSH keys \(user and pinned host key\) \[SKIPPED: cached/);
    // Only what SSH needs on the client: no disk, seed, flash or console here.
    expect(clientFiles()).toEqual(['id_ed25519', 'id_ed25519.pub', 'known_hosts', 'ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub', 'state.json']);
    expect((await volumesOfHome(remote.docker, home)).map((v) => v.replace(/^m5dev-[0-9a-f]+-/, ''))).toEqual(['blobs', 'instance-default']);
  }, 1_200_000);

  it('runs guest commands through the Engine API relay, with their output and exit code', async () => {
    const uname = await cli(['exec', '--', 'uname', '-m'], env);
    expect(uname.code, uname.stderr).toBe(0);
    expect(uname.stdout.trim()).toBe('aarch64');
    expect((await cli(['exec', '--', 'exit 5'], env)).code).toBe(5);
    const container = await cli(['exec', '--', 'hostname'], { ...env, M5DEV_SSH: 'container' });
    expect(container.code, container.stderr).toBe(0);
    expect(container.stdout.trim()).toBe('default');
    // The seed's +10G reached the guest's root on the engine's volume too.
    const df = await cli(['exec', '--', 'df', '--output=size', '-B', '1G', '/'], env);
    expect(Number(df.stdout.trim().split('\n').pop())).toBeGreaterThanOrEqual(11);
  }, 180_000);

  it('ssh-config reaches the guest with the pinned host key (VS Code Remote-SSH)', async () => {
    const cfg = await cli(['ssh-config'], env);
    expect(cfg.stdout).toMatch(/ProxyCommand .* ssh-proxy --home .* --name default/);
    expect(cfg.stdout).toContain('StrictHostKeyChecking yes');
    const file = join(home, 'ssh_config');
    writeFileSync(file, cfg.stdout);
    // ssh runs without our environment: the proxy finds the engine from the instance's record.
    const clean = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' };
    expect(execFileSync('ssh', ['-F', file, '-o', 'BatchMode=yes', 'm5dev-default', 'echo', 'ok'], { encoding: 'utf8', env: clean }).trim()).toBe('ok');
  }, 120_000);

  it('status names the engine and where the files live; logs read the console from the engine', async () => {
    const status = JSON.parse((await cli(['--json', 'status', '--name', 'default'], env)).stdout) as Record<string, unknown>;
    expect(status).toMatchObject({ state: 'running', files: 'volumes', engine: { host: remote.host, transport: 'tcp', source: 'DOCKER_HOST', arch: 'x86_64' } });
    const logs = await cli(['logs'], env);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toMatch(/Booting Linux on physical CPU/);
  }, 120_000);

  it('refuses to touch the instance through another engine', async () => {
    const res = await cli(['exec', '--', 'true'], { ...env, DOCKER_HOST: '', M5DEV_SSH: 'container' });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/lives on the Docker engine at tcp:\/\/127\.0\.0\.1:\d+/);
  }, 60_000);

  it('suspends onto the engine and resumes where it was', async () => {
    const token = `remote-${Date.now()}`;
    const before = await cli(['exec', '--', `echo ${token} > /dev/shm/marker; cat /proc/sys/kernel/random/boot_id`], env);
    expect(before.code, before.stderr).toBe(0);
    const sus = await cli(['--json', 'suspend'], env);
    expect(sus.code, sus.stderr).toBe(0);
    expect(JSON.parse(sus.stdout)).toMatchObject({ synced: true });
    expect(await containersOn(remote.docker, home)).toEqual([]);
    expect(JSON.parse((await cli(['--json', 'status', '--name', 'default'], env)).stdout)).toMatchObject({ state: 'suspended' });
    const up = await cli(['--json', 'up'], env);
    expect(up.code, up.stderr).toBe(0);
    expect(JSON.parse(up.stdout)).toMatchObject({ resumed: true });
    const after = await cli(['exec', '--', 'cat /dev/shm/marker /proc/sys/kernel/random/boot_id'], env);
    expect(after.stdout.trim().split('\n')).toEqual([token, before.stdout.trim()]);
  }, 600_000);

  it("up --m5ops-checkpoints: the agent saves the guest's checkpoint into the engine's volume, and up --from-checkpoint resumes it there", async () => {
    const m5op = await buildM5op(toolchain);
    // Whatever fails here, no instance of this test runs on into the next one.
    onTestFinished(async () => {
      for (const n of ['ck', 'ck2']) if (existsSync(join(home, 'instances', n))) await cli(['destroy', '--name', n], env);
    });
    // The defaults named (elsewhere they are what runs unnamed): they reach the instance's state, which the checkpoint records.
    const up = await cli(['--json', 'up', '--name', 'ck', '--image-url', imageUrl, '--m5ops-checkpoints', '--disk', 'raw', '--ram-file', '--m5ops-exit', 'continue', '--m5ops-stats', 'clock', '--boot-timeout', '600'], env);
    expect(up.code, up.stderr).toBe(0);
    expect((await cli(['cp', m5op, 'ck:/home/ubuntu'], env)).code).toBe(0);
    // A number the guest computes before the op (in no command line), in memory only.
    const v = 1e12 + Math.floor(Math.random() * 1e12);
    const before = await cli(['exec', '--name', 'ck', '--', `echo $((${v} * 3)) > /dev/shm/t; cat /proc/sys/kernel/random/boot_id; sudo ./m5op op 0x43 0 0 >/dev/null && echo ran-on`], env);
    expect(before.code, before.stderr).toBe(0);
    const [bootId, ranOn] = before.stdout.trim().split('\n');
    expect(ranOn).toBe('ran-on');
    const list = JSON.parse((await cli(['--json', 'checkpoints', '--name', 'ck'], env)).stdout) as unknown[];
    expect(list).toMatchObject([{ index: 1, disk: 'raw', format: 2, instance: { disk: 'raw', ramFile: true, m5ops: { exit: 'continue', stats: 'clock', checkpoints: true } } }]);
    // The agent says so once its last step (on a volume: through a helper container) is done.
    expect(await fileWhenMatching(join(home, 'instances', 'ck', 'checkpoint-agent.log'), /checkpoint 1 saved/)).toMatch(/checkpoint 1 saved \(the guest stood still \d+ ms\)/);
    // Its source stopped (the checkpoint stays in its volume): the new instance resumes the op's moment.
    expect((await cli(['down', '--name', 'ck'], env)).code).toBe(0);
    const again = await cli(['--json', 'up', '--from-checkpoint', 'ck:1', '--name', 'ck2', '--boot-timeout', '600'], env);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ resumed: true });
    const seen = await cli(['exec', '--name', 'ck2', '--', 'cat /dev/shm/t /proc/sys/kernel/random/boot_id'], env);
    expect(seen.stdout.trim().split('\n'), seen.stderr).toEqual([String(v * 3), bootId]);
    for (const n of ['ck', 'ck2']) expect((await cli(['destroy', '--name', n], env)).code).toBe(0);
    expect((await volumesOfHome(remote.docker, home)).map((x) => x.replace(/^m5dev-[0-9a-f]+-/, '')).sort()).toEqual(['blobs', 'instance-default']);
  }, 1_200_000);

  it('down removes the container and its network; with no address pool left, up is exit 21 and loses nothing; destroy removes the engine\'s volume and the client\'s files', async () => {
    expect(await networksOn(remote.docker, home)).toHaveLength(1); // the running instance's own
    const down = await cli(['down'], env);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toMatch(/^default stopped$/m); // clean: not "stopped (forced)"
    expect(await containersOn(remote.docker, home)).toEqual([]);
    expect(await networksOn(remote.docker, home)).toEqual([]);
    // Every address pool of the engine taken (by the test's own networks): up says so, and makes nothing.
    const files = clientFiles();
    const release = await fillAddressPools(remote.docker);
    try {
      const full = await cli(['up'], env);
      expect(full.code, full.stderr).toBe(21);
      expect(full.stderr).toMatch(/no free address range for the instance's network/);
      expect(full.stderr).toMatch(/hint: .*docker network prune/);
      expect(await containersOn(remote.docker, home)).toEqual([]);
      expect(await networksOn(remote.docker, home)).toEqual([]);
      expect(clientFiles()).toEqual(files);
    } finally {
      await release();
    }
    const destroy = await cli(['destroy'], env);
    expect(destroy.code, destroy.stderr).toBe(0);
    expect((await volumesOfHome(remote.docker, home)).map((v) => v.replace(/^m5dev-[0-9a-f]+-/, ''))).toEqual(['blobs']);
    expect(existsSync(join(home, 'instances', 'default'))).toBe(false);
  }, 180_000);

  it('runs a gem5-style disk image (m5dev run): the image copied to the engine, the console streamed through the Engine API, the guest\'s code, m5out out', async () => {
    const image = await gem5Standin(fx, toolchain);
    const scratch = mkdtempSync(join(tmpdir(), 'm5dev-remote-run-'));
    const script = join(scratch, 'job.sh');
    writeFileSync(script, 'echo "remote job"\necho made-remotely > /tmp/r\nm5 writefile /tmp/r r.txt\nm5 fail 5\n');
    const out = join(scratch, 'out');
    const res = await cli(['run', '--disk', image, '--exits', '2', '--m5ops-readfile', script, '--out', out, '--timeout', '600'], env);
    expect(res.code, res.stderr).toBe(5);
    expect(res.stderr).toMatch(/Copied the disk image to the engine \(verified there/);
    expect(res.stdout).toMatch(/standin-init: booted[\s\S]*remote job/);
    expect(readFileSync(join(out, 'r.txt'), 'utf8')).toBe('made-remotely\n');
    expect(readFileSync(join(out, 'system.terminal'), 'utf8')).toMatch(/remote job/);
    expect(await containersOn(remote.docker, home)).toEqual([]);
    expect((await cli(['destroy', '--name', 'run'], env)).code).toBe(0);
    rmSync(scratch, { recursive: true, force: true });
  }, 900_000);
});

/**
 * The exact-kernel module loop on the remote engine. The kernel is built once, on the local engine,
 * in the kernel tests' home; the remote engine gets that very build copied in (verified there), not
 * a second 10-minute build.
 */
describe('the module loop on a remote engine', () => {
  const NAME = runInstanceName('rkmod');
  let kt: KernelTarball;
  let mirror: FileServer;
  let kenv: NodeJS.ProcessEnv;
  let kernelArgs: string[];
  let localSha = '';
  let localRecord: { build: string; image: string };

  beforeAll(async () => {
    kt = kernelTarball();
    mirror = await serveDir(kt.dir);
    kernelArgs = kernelBuildArgs(kt, `${mirror.url}/${kt.file}`);
    const khome = kernelTestHome();
    const local = await cli(['--json', ...kernelArgs], { M5DEV_HOME: khome, DOCKER_HOST: '' });
    if (local.code !== 0) throw new Error(`local kernel build failed: ${local.stderr}`);
    localSha = (JSON.parse(local.stdout) as { imageSha256: string }).imageSha256;
    localRecord = JSON.parse(local.stdout) as { build: string; image: string };
    kenv = { M5DEV_HOME: khome, DOCKER_HOST: remote.host };
    await sweepDeadRunInstances(khome, 'rkmod', kenv);
    // The remote engine's data outlives a run: its kernel volume goes, so the copy below is a real one every run.
    for (const v of await volumesOfHome(remote.docker, khome)) if (v.endsWith('-kernels')) await remote.docker.getVolume(v).remove({ force: true });
  }, 3_600_000);

  afterAll(async () => {
    if (kenv) await cli(['destroy', '--name', NAME], kenv);
    await mirror?.close();
    if (kt) rmSync(kt.dir, { recursive: true, force: true });
  });

  it('a finished build whose Image is not the one on record is refused where it landed (exit 11), and not kept as a build', async () => {
    // Another home with this machine's build of the same inputs, its Image changed by one byte.
    const other = mkdtempSync(join(tmpdir(), 'm5dev-kcopy-'));
    const src = join(kernelTestHome(), 'kernels', localRecord.build);
    const dst = join(other, 'kernels', localRecord.build);
    const image = join(other, 'kernels', localRecord.image);
    mkdirSync(dirname(image), { recursive: true });
    cpSync(join(src, 'm5dev-kernel.json'), join(dst, 'm5dev-kernel.json'));
    const bytes = readFileSync(join(kernelTestHome(), 'kernels', localRecord.image));
    bytes[4096] = bytes[4096]! ^ 0xff;
    writeFileSync(image, bytes);
    const oenv = { M5DEV_HOME: other, DOCKER_HOST: remote.host };
    try {
      for (const attempt of [1, 2]) {
        const res = await cli(kernelArgs, oenv);
        expect(res.code, `attempt ${attempt}: ${res.stderr}`).toBe(11);
        expect(res.stderr).toMatch(new RegExp(`the copied Image has sha256 [0-9a-f]{64}, not ${localSha}`));
        expect(res.stderr).toMatch(/hint: Run `m5dev kernel build --rebuild` to build it on this engine/);
      }
    } finally {
      for (const v of await volumesOfHome(remote.docker, other)) await remote.docker.getVolume(v).remove({ force: true });
      rmSync(other, { recursive: true, force: true });
    }
  }, 900_000);

  it('kernel build copies this machine\'s finished build in, verified on the engine', async () => {
    const res = await cli(['--json', ...kernelArgs], kenv);
    expect(res.code, res.stderr).toBe(0);
    const k = JSON.parse(res.stdout) as { imageSha256: string; imagePath: string | null; files: string; release: string };
    expect(k).toMatchObject({ imageSha256: localSha, imagePath: null, files: 'volumes', release: kt.version });
    expect(res.stderr).toMatch(/Copied the build of .* to the engine \(Image verified there\)/);
    expect(res.stderr).not.toMatch(/Cross-compile Image and modules\n.*Built/);
  }, 1_200_000);

  // A second full kernel build, on the remote engine's volume (about as long as the first): opt in with
  // M5DEV_TEST_REMOTE_KERNEL=1 (`make test-remote-kernel`); results in docs/any-engine.md.
  it.runIf(process.env.M5DEV_TEST_REMOTE_KERNEL === '1')('builds the kernel on the remote engine itself, bit-identical to the local build', async () => {
    const res = await cli(['--json', ...kernelArgs, '--rebuild'], kenv);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/Built .* in \d+ s/);
    expect((JSON.parse(res.stdout) as { imageSha256: string }).imageSha256).toBe(localSha);
  }, 3_600_000);

  it('direct-boots that kernel on the remote engine and runs the module test there', async () => {
    const up = await cli(['up', '--name', NAME, '--kernel', kt.version, '--image-url', imageUrl, '--disk', 'overlay', '--boot-timeout', '600'], kenv);
    expect(up.code, up.stderr).toBe(0);
    // The build's guest module tree came along from the engine's volume: /lib/modules/V and its build tree.
    const uname = await cli(['exec', '--name', NAME, '--', 'uname -r; readlink /lib/modules/$(uname -r)/build'], kenv);
    expect(uname.stdout.trim().split('\n')).toEqual([kt.version, `/usr/src/linux-headers-${kt.version}`]);
    const res = await cli(['--json', 'module', 'test', '--name', NAME], kenv);
    expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);
    const out = JSON.parse(res.stdout) as { modules: string[]; vermagic: string; test: { passed: number; planned: number } };
    expect(out.modules).toEqual(['m5.ko']);
    expect(out.vermagic.split(' ')[0]).toBe(kt.version);
    expect(out.test).toMatchObject({ passed: 6, planned: 6 });
  }, 1_200_000);

  it('m5ops on the remote engine: the readfile goes in and the writefile comes out through the Engine API', async () => {
    // The project's m5op client, cross-built in the local toolchain image, copied in over the relay.
    const scratch = mkdtempSync(join(tmpdir(), 'm5dev-remote-m5ops-'));
    try {
      const img = await cli(['--json', 'image', 'build'], { M5DEV_HOME: kernelTestHome(), DOCKER_HOST: '' });
      expect(img.code, img.stderr).toBe(0);
      cpSync(join(ROOT, 'module', 'm5op', 'm5op.c'), join(scratch, 'm5op.c'));
      const built = spawnSync('docker', ['run', '--rm', '-v', `${scratch}:/w`, (JSON.parse(img.stdout) as { tag: string }).tag, 'aarch64-linux-gnu-gcc', '-static', '-O2', '-o', '/w/m5op', '/w/m5op.c'], { env: { ...process.env, DOCKER_HOST: '' }, stdio: 'inherit' });
      expect(built.status).toBe(0);
      expect((await cli(['cp', '--name', NAME, join(scratch, 'm5op'), 'guest:/home/ubuntu'], kenv)).code).toBe(0);
      expect((await cli(['module', 'load', '--name', NAME], kenv)).code).toBe(0);
      const data = randomBytes(200_001);
      writeFileSync(join(scratch, 'in.bin'), data);
      const set = await cli(['m5ops', 'readfile', '--name', NAME, join(scratch, 'in.bin')], kenv);
      expect(set.code, set.stderr).toBe(0);
      const got = await cli(['exec', '--name', NAME, '--', './m5op readfile | sha256sum | cut -d" " -f1; ./m5op readfile > /tmp/w && ./m5op writefile /tmp/w out/back.bin'], kenv);
      expect(got.code, got.stderr).toBe(0);
      expect(got.stdout.trim().split('\n')).toEqual([createHash('sha256').update(data).digest('hex'), '200001']);
      const dest = join(scratch, 'out');
      const out = await cli(['--json', 'm5ops', 'out', '--name', NAME, dest], kenv);
      expect(out.code, out.stderr).toBe(0);
      expect((JSON.parse(out.stdout) as { files: { path: string; size: number }[] }).files).toEqual([{ path: 'out/back.bin', size: 200001 }]);
      expect(readFileSync(join(dest, 'out', 'back.bin')).equals(data)).toBe(true);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
      await cli(['down', '--name', NAME], kenv);
    }
  }, 900_000);
});
