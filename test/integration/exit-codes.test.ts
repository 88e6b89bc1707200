/**
 * The exit codes of src/errors.ts that a user meets before any guest answers, each on the path
 * that raises it, through the built CLI against the real engine and a real QEMU (no guest boots:
 * the disk images here hold nothing to boot). Each failure leaves no container and no partial file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { arch, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, cli, startCli } from '../helpers/cli.js';
import { smallDisks } from '../helpers/small-disk.js';
import { serveDir, type FileServer } from '../helpers/http-server.js';
import { containersOfHome, docker, networksOfHome } from '../helpers/docker.js';
import { fillAddressPools } from '../helpers/engines.js';
import { freePort } from '../helpers/fixture.js';
import { ExitCode } from '../../src/errors.js';
import { STORED } from '../../src/vm/instance.js';
import { SAVED_FORMAT, viewSaved } from '../../src/vm/saved-state.js';
import { LocalDirStorage } from '../../src/engine/storage.js';

let images: FileServer;
let dir: string;
const sha = (f: string) => createHash('sha256').update(readFileSync(join(dir, f))).digest('hex');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'm5dev-exit-images-'));
  // A well-formed qcow2 that holds nothing to boot: the firmware runs, no guest ever answers SSH.
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'blank.img'), '64M']);
  // A qcow2 header over garbage: qemu-img takes it for qcow2 and cannot read it.
  writeFileSync(join(dir, 'broken.img'), Buffer.concat([Buffer.from([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]), Buffer.alloc(4096, 0xa5)]));
  // Random bytes, larger than the small home below can hold.
  writeFileSync(join(dir, 'large.img'), randomBytes(8 * 2 ** 20));
  images = await serveDir(dir);
}, 120_000);

const disks = smallDisks();
afterAll(async () => {
  disks.unmountAll();
  await images?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A fresh home; what a failed command may leave there is checked by `leftNothing`. */
const freshHome = () => mkdtempSync(join(tmpdir(), 'm5dev-exit-home-'));
async function leftNothing(home: string, name = 'default'): Promise<void> {
  expect(await containersOfHome(home)).toEqual([]);
  expect(await networksOfHome(home)).toEqual([]); // a failed first up removes the network it made
  const tmp = join(home, 'tmp');
  expect(existsSync(tmp) ? readdirSync(tmp) : []).toEqual([]);
  const inst = join(home, 'instances', name);
  expect(existsSync(inst) ? readdirSync(inst).filter((f) => f.endsWith('.tmp')) : []).toEqual([]);
}
const upArgs = async (image: string, more: string[] = []) => ['up', '--image-url', `${images.url}/${image}`, '--image-sha256', sha(image), '--ssh-port', String(await freePort()), ...more];

describe('exit codes before a guest answers', () => {
  it(`${ExitCode.downloadFailed}: the cloud image cannot be downloaded (HTTP 404); nothing unverified is kept`, async () => {
    const home = freshHome();
    const res = await cli(['up', '--image-url', `${images.url}/gone.img`, '--image-sha256', 'a'.repeat(64), '--ssh-port', String(await freePort())], { M5DEV_HOME: home });
    expect(res.code, res.stderr).toBe(ExitCode.downloadFailed);
    expect(res.stderr).toContain(`m5dev: error: GET ${images.url}/gone.img answered HTTP 404`);
    expect(res.stderr).toMatch(/hint: Check the URL and your network/);
    expect(res.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(join(home, 'blobs', 'sha256', 'a'.repeat(64)))).toBe(false);
    await leftNothing(home);
  }, 900_000);

  it('an m5dev.json in the working directory is read, and what it sets is shown before use, --quiet or not; --quiet prints no progress', async () => {
    const home = freshHome();
    const project = mkdtempSync(join(tmpdir(), 'm5dev-project-'));
    mkdirSync(join(project, 'src'));
    writeFileSync(join(project, 'm5dev.json'), JSON.stringify({ imageUrl: `${images.url}/from-json.img`, imageSha256: 'b'.repeat(64), shares: ['src:/opt/src'], cpus: 64 }));
    // A cloned repository's file may not choose the image the guest boots: refused, naming each setting, nothing fetched.
    const untrusted = await cli(['--quiet', 'up', '--ssh-port', String(await freePort())], { M5DEV_HOME: home }, { cwd: project });
    expect(untrusted.code, untrusted.stderr).toBe(ExitCode.untrustedConfig);
    expect(untrusted.stderr).toMatch(/m5dev: error: \S+m5dev\.json sets "imageUrl", "imageSha256", which choose code this machine runs or boots/);
    expect(untrusted.stderr).toContain('hint: Read what it names; to use it, say so on the command line: `m5dev up --trust-config imageUrl,imageSha256`');
    expect(images.requests.map((r) => r.path)).not.toContain('/from-json.img');
    const res = await cli(['--quiet', 'up', '--trust-config', 'imageUrl,imageSha256', '--ssh-port', String(await freePort())], { M5DEV_HOME: home }, { cwd: project });
    expect(res.code, res.stderr).toBe(ExitCode.downloadFailed);
    expect(res.stderr).toContain(`m5dev: m5dev.json sets the cloud image (trusted by --trust-config): ${images.url}/from-json.img (sha256 ${'b'.repeat(64)})`);
    expect(res.stderr).toContain(`m5dev: share ${join(project, 'src')} → guest /opt/src, read-only (from m5dev.json)`);
    expect(res.stderr).toMatch(/m5dev: m5dev\.json asks for 64 vCPUs; capped to \d+ \(this host's cores\)/);
    expect(res.stderr).toContain(`m5dev: error: GET ${images.url}/from-json.img answered HTTP 404`);
    // --quiet: m5dev's own lines and the hint, no task list.
    expect(res.stderr.split('\n').filter(Boolean).filter((l) => !/^(m5dev: |hint: )/.test(l))).toEqual([]);
    await leftNothing(home);
    rmSync(project, { recursive: true, force: true });
  }, 600_000);

  it(`${ExitCode.untrustedConfig}: a cloned m5dev.json naming the toolchain's base image is refused before anything is pulled or built`, async () => {
    const home = freshHome();
    const project = mkdtempSync(join(tmpdir(), 'm5dev-project-'));
    const evil = `127.0.0.1:9/m5dev-evil-${process.pid}/base:latest`;
    writeFileSync(join(project, 'm5dev.json'), JSON.stringify({ baseImage: evil }));
    const res = await cli(['up', '--ssh-port', String(await freePort())], { M5DEV_HOME: home }, { cwd: project });
    expect(res.code, res.stderr).toBe(ExitCode.untrustedConfig);
    expect(res.stderr).toMatch(/sets "baseImage", which chooses code this machine runs or boots: a cloned repository's m5dev\.json may not, and nothing was run/);
    expect(res.stderr).not.toMatch(/Toolchain image|Base image|pull/i);
    expect(res.stderr).not.toMatch(/\n\s+at /);
    // Unknown trust names are a usage error.
    const bad = await cli(['up', '--trust-config', 'cpus'], { M5DEV_HOME: home }, { cwd: project });
    expect(bad.code).toBe(ExitCode.usage);
    expect(bad.stderr).toMatch(/--trust-config: "cpus" is not a setting that chooses code/);
    await leftNothing(home);
    rmSync(project, { recursive: true, force: true });
  });

  it(`${ExitCode.imageBuildFailed}: --base-image chooses the toolchain's base for every command that builds or checks it: one the engine lacks and no registry serves is named, before anything else is made`, async () => {
    // A registry on loopback that does not answer: the engine's pull is refused at once, nothing leaves this machine.
    const base = '127.0.0.1:1/m5dev-test/absent:1';
    const home = freshHome();
    for (const args of [['image', 'save', join(home, 'x.tar')], ['image', 'push', '127.0.0.1:1/m5dev-test/x:1'], ['kernel', 'build', '--version', '6.6.33'], ['module', 'build'], await upArgs('blank.img')]) {
      const res = await cli(['-q', ...args, '--base-image', base], { M5DEV_HOME: home });
      expect(res.code, `${args.join(' ')}: ${res.stderr}`).toBe(ExitCode.imageBuildFailed);
      expect(res.stderr).toMatch(new RegExp(`^m5dev: error: Base image ${base.replace(/[.]/g, '\\.')} is not present and could not be pulled`, 'm'));
    }
    expect(existsSync(join(home, 'x.tar'))).toBe(false);
    expect(existsSync(join(home, 'instances', 'default', 'state.json'))).toBe(false);
    await leftNothing(home);
    // doctor says so as its check of the base image.
    const doctor = await cli(['doctor', '--base-image', base], { M5DEV_HOME: home });
    expect(doctor.code).toBe(ExitCode.doctorFailed);
    expect(doctor.stdout).toMatch(new RegExp(`^FAIL base image +${base.replace(/[.]/g, '\\.')} is not on the engine`, 'm'));
  }, 300_000);

  it('--version and -V print the package version and nothing else', async () => {
    const version = `${(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version}\n`;
    for (const flag of ['--version', '-V']) {
      const res = await cli([flag]);
      expect(res.code).toBe(0);
      expect(res.stdout).toBe(version);
      expect(res.stderr).toBe('');
    }
  });

  it('global options and the plain outputs through the CLI: --help, -q, --toolchain, status and status --name of a missing instance', async () => {
    const home = freshHome();
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    for (const c of ['up', 'exec', 'suspend', 'kernel', 'module', 'm5ops', 'image', 'doctor']) expect(help.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
    // -q is --quiet: m5dev's own error and hint, no task list.
    const quiet = await cli(['-q', 'down', '--name', 'missing'], { M5DEV_HOME: home });
    expect(quiet.code).toBe(ExitCode.instanceNotFound);
    expect(quiet.stderr).toBe('m5dev: error: Instance "missing" does not exist\nhint: Start it with `m5dev up --name missing`.\n');
    // --toolchain REF: that image as it is, never a build; one the engine lacks is a usage error that says how to give it.
    const given = await cli(['-q', '--toolchain', 'm5dev-test/absent:1', 'image', 'build'], { M5DEV_HOME: home });
    expect(given.code, given.stderr).toBe(ExitCode.usage);
    expect(given.stderr).toMatch(/toolchain image m5dev-test\/absent:1 is not on the engine/);
    expect(given.stderr).toMatch(/hint: Load it with `m5dev image load FILE`/);
    // status as text: the engine, then each instance or a word on how to start one.
    const status = await cli(['status'], { M5DEV_HOME: home });
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^engine: (docker|podman) \S+ \S+\/\S+ at \S+ \(.*\)\nno instances \(start one with `m5dev up`\)\n$/);
    const missing = await cli(['status', '--name', 'missing'], { M5DEV_HOME: home });
    expect(missing.code).toBe(ExitCode.instanceNotFound);
    expect(missing.stderr).toMatch(/Instance "missing" does not exist/);
    // A snapshot that is not a URL is refused before anything runs.
    const snap = await cli(['image', 'lock', '--snapshot', 'notaurl'], { M5DEV_HOME: home });
    expect(snap.code).toBe(ExitCode.usage);
    expect(snap.stderr).toMatch(/--snapshot notaurl is not an http\(s\) URL/);
    // A digest that is not 64 hex digits is refused before the archive is read.
    const digest = await cli(['image', 'load', '/nonexistent.tar', '--sha256', 'ABC'], { M5DEV_HOME: home });
    expect(digest.code).toBe(ExitCode.usage);
    expect(digest.stderr).toMatch(/^m5dev: error: --sha256 takes 64 hex digits$/m);
  });

  it(`${ExitCode.toolFailed}: a tool step fails (qemu-img cannot read the image), with the tool's own words`, async () => {
    const home = freshHome();
    const res = await cli(await upArgs('broken.img'), { M5DEV_HOME: home });
    expect(res.code, res.stderr).toBe(ExitCode.toolFailed);
    expect(res.stderr).toMatch(/m5dev: error: .*qemu-img/);
    expect(res.stderr).toMatch(/Could not open .*Unsupported cluster size/);
    expect(res.stderr).not.toMatch(/\n\s+at /);
    await leftNothing(home);
    // No half disk: neither the raw disk nor its staging file.
    expect(readdirSync(join(home, 'instances', 'default')).filter((f) => f.startsWith('disk'))).toEqual([]);
  }, 600_000);

  it(`${ExitCode.bootFailed}: no SSH within --boot-timeout; the console's tail is shown and no container is left; suspended, a resume with no network to be had is exit 21 and keeps the state, up --no-resume drops it and boots what was asked`, async () => {
    const home = freshHome();
    // --accel kvm on this x86_64 engine: refused before QEMU starts (an arm64 guest needs an arm64 host for KVM).
    if (arch() === 'x64') {
      const kvm = await cli(await upArgs('blank.img', ['--accel', 'kvm']), { M5DEV_HOME: home });
      expect(kvm.code, kvm.stderr).toBe(ExitCode.usage);
      expect(kvm.stderr).toMatch(/m5dev: error: --accel kvm needs an arm64 host; this Docker host is x86_64\nhint: Use --accel tcg \(or auto\)\./);
      expect(await containersOfHome(home)).toEqual([]);
    }
    // --accel auto, the default, said: TCG here, and QEMU starts.
    const res = await cli(await upArgs('blank.img', ['--boot-timeout', '20', '--accel', 'auto']), { M5DEV_HOME: home });
    expect(res.code, res.stderr).toBe(ExitCode.bootFailed);
    expect(res.stderr).toMatch(/QEMU started \(tcg, -cpu cortex-a57/);
    expect(res.stderr).toMatch(/m5dev: error: Guest not reachable over SSH after 20 s/);
    expect(res.stderr).toMatch(/hint: Raise --boot-timeout, or check the console with `m5dev logs`/);
    // The firmware ran: its lines are the console's tail, and `m5dev logs` still reads them.
    const logs = await cli(['logs'], { M5DEV_HOME: home });
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toMatch(/UEFI|EDK|BdsDxe|Boot/i);
    await leftNothing(home);
    // The same instance, suspended (a saved state of another machine: a record and its stream).
    const inst = join(home, 'instances', 'default');
    // The disk as it is now (a changed disk would be discarded, not refused), the machine another one.
    const { stamps } = await viewSaved(new LocalDirStorage(inst));
    const record = { format: SAVED_FORMAT.stream, launchKey: 'another-machine', stamps, bytes: 4, savedAt: new Date().toISOString(), saveMs: 1 };
    writeFileSync(join(inst, STORED.vmState), 'QEVM');
    writeFileSync(join(inst, STORED.vmStateRecord), JSON.stringify(record));
    const saved = () => readdirSync(inst).filter((f) => f === STORED.vmState || f === STORED.vmStateRecord).sort();
    expect(saved()).toHaveLength(2);
    // Other settings than the suspended machine's: refused, nothing started, the state kept.
    const refused = await cli(await upArgs('blank.img', ['--cpus', '3', '--boot-timeout', '10']), { M5DEV_HOME: home });
    expect(refused.code, refused.stderr).toBe(ExitCode.usage);
    expect(refused.stderr).toMatch(/is suspended, but the VM settings/);
    expect(saved()).toHaveLength(2);
    expect(await containersOfHome(home)).toEqual([]);
    // The same machine (a saved state to resume) while the engine has no address pool for its
    // network: exit 21, and the saved state is kept for the next up (nothing was tried).
    const state = JSON.parse(readFileSync(join(inst, 'state.json'), 'utf8')) as { launchKey: string; ramFile?: boolean };
    const same = { ...record, launchKey: state.launchKey, format: state.ramFile ? SAVED_FORMAT.ramFile : SAVED_FORMAT.stream };
    writeFileSync(join(inst, STORED.vmStateRecord), JSON.stringify(same));
    if (state.ramFile) writeFileSync(join(inst, STORED.ram), 'RAM');
    const release = await fillAddressPools(docker);
    try {
      const full = await cli(await upArgs('blank.img', ['--boot-timeout', '10']), { M5DEV_HOME: home });
      expect(full.code, full.stderr).toBe(ExitCode.networkUnavailable);
      expect(full.stderr).toMatch(/resuming the guest saved at/);
      expect(full.stderr).toMatch(/hint: .*docker network prune/);
    } finally {
      await release();
    }
    expect(saved()).toHaveLength(2);
    expect(await containersOfHome(home)).toEqual([]);
    expect(await networksOfHome(home)).toEqual([]);
    writeFileSync(join(inst, STORED.vmStateRecord), JSON.stringify(record));
    // --no-resume: the saved state is dropped and the machine asked for boots afresh (again no guest answers).
    const fresh = await cli(await upArgs('blank.img', ['--cpus', '3', '--no-resume', '--boot-timeout', '10']), { M5DEV_HOME: home });
    expect(fresh.code, fresh.stderr).toBe(ExitCode.bootFailed);
    expect((await cli(['logs'], { M5DEV_HOME: home })).stdout).toMatch(/UEFI|EDK|BdsDxe|Boot/i); // booted, not waiting for a stream
    expect(saved()).toEqual([]);
    expect(JSON.parse(readFileSync(join(inst, 'state.json'), 'utf8'))).toMatchObject({ cpus: 3 });
    await leftNothing(home);
  }, 600_000);

  it('143: SIGTERM during up (a cancelled CI job) stops it cleanly: no container, no partial file', async () => {
    const home = freshHome();
    const run = startCli(await upArgs('blank.img', ['--boot-timeout', '600']), { M5DEV_HOME: home });
    // Once the VM container runs (the phase this test names), never at a deadline.
    const deadline = Date.now() + 300_000;
    while ((await containersOfHome(home, 'default')).length === 0) { // the VM container, not a tool step's
      if (Date.now() > deadline) throw new Error('up never started the VM container');
      await new Promise((r) => setTimeout(r, 250));
    }
    run.child.kill('SIGTERM');
    const res = await run.done;
    expect(res.code, res.stderr).toBe(143);
    expect(res.stderr).toMatch(/cleaning up/i);
    await leftNothing(home);
  }, 600_000);

  it(`${ExitCode.shareFailed}: a share that is not a directory is refused before anything is fetched or started`, async () => {
    const home = freshHome();
    const project = mkdtempSync(join(tmpdir(), 'm5dev-exit-project-')); // outside the m5dev home, which is never shared
    const file = join(project, 'not-a-dir');
    writeFileSync(file, 'a file\n');
    const res = await cli(await upArgs('blank.img', ['--share', file]), { M5DEV_HOME: home });
    expect(res.code, res.stderr).toBe(ExitCode.shareFailed);
    expect(res.stderr).toContain(`m5dev: error: ${file} is not a directory`);
    expect(res.stderr).toMatch(/hint: Share an existing directory: --share HOST_DIR\[:GUEST_PATH\]/);
    expect(res.stderr).not.toMatch(/Download|Instance disk/);
    await leftNothing(home);
    rmSync(project, { recursive: true, force: true });
  }, 120_000);

  it(`${ExitCode.diskFull}: the disk fills up during the download: nothing enters the cache, the bytes so far are kept to continue`, async () => {
    const home = freshHome();
    disks.mount(home, '2m');
    const res = await cli(await upArgs('large.img'), { M5DEV_HOME: home, M5DEV_MIN_FREE_GIB: '0' });
    expect(res.code, res.stderr).toBe(ExitCode.diskFull);
    expect(res.stderr).toMatch(/m5dev: error: No space left on the device while downloading large\.img/);
    expect(res.stderr).toMatch(/hint: Free space in .*\/tmp/);
    expect(existsSync(join(home, 'blobs', 'sha256', sha('large.img')))).toBe(false);
    expect(statSync(join(home, 'tmp', `${sha('large.img')}.part`)).size).toBeGreaterThan(0);
    expect(await containersOfHome(home)).toEqual([]);
    expect(await networksOfHome(home)).toEqual([]);
  }, 120_000);

  it(`${ExitCode.doctorFailed}: doctor with no engine to reach; up refused by the disk check before it starts anything`, async () => {
    const home = freshHome();
    const doc = await cli(['--json', 'doctor'], { M5DEV_HOME: home, DOCKER_HOST: `tcp://127.0.0.1:${await freePort()}` });
    expect(doc.code, doc.stderr).toBe(ExitCode.doctorFailed);
    const out = JSON.parse(doc.stdout) as { ok: boolean; checks: { name: string; status: string; hint?: string }[] };
    expect(out.ok).toBe(false);
    // The engine check is the one that failed, and it says what to do.
    expect(out.checks.filter((c) => c.status === 'fail').map((c) => c.name)).toEqual(['engine']);
    expect(out.checks.find((c) => c.name === 'engine')).toMatchObject({ hint: expect.stringMatching(/Start Docker|DOCKER_HOST/) });
    const up = await cli(await upArgs('blank.img'), { M5DEV_HOME: home, M5DEV_MIN_FREE_GIB: '1000000' });
    expect(up.code, up.stderr).toBe(ExitCode.doctorFailed);
    expect(up.stderr).toMatch(/m5dev: error: free disk: [\d.]+ GiB free in /);
    expect(up.stderr).toMatch(/hint: An instance needs at least 1000000 GiB/);
    await leftNothing(home);
  }, 600_000);
});
