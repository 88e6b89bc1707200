/**
 * `m5dev run` (issue "gem5's own workloads"): a stand-in for a gem5-resources arm64 image, derived
 * from the fixture by scripts/gem5-standin-image.sh (test/helpers/gem5-standin.ts) (its own /sbin/init, a hook that does exit,
 * readfile, the script, exit; no systemd, network, SSH or cloud-init), booted through UEFI as
 * theirs are. The job's console comes on stdout as it runs, its code is m5dev's, m5out and the
 * console land in --out, the user's image is never written, and no container is left.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { cli, JUNIT_XSD } from '../helpers/cli.js';
import { fixture } from '../helpers/fixture.js';
import { containersOfHome, removeContainersOfHome } from '../helpers/docker.js';
import { gem5Standin } from '../helpers/gem5-standin.js';
import { kernelBuildArgs, kernelTarball, kernelTestHome, runInstanceName } from '../helpers/kernel.js';

let scratch: string;
let home: string;
let env: NodeJS.ProcessEnv;
let image: string;
let imageSha: string;

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
/** What the guest did (its m5ops log) and the run's stderr: said when a job's output is not what was expected. */
const what = (res: { stderr: string }, name = 'run') => {
  const log = join(home, 'instances', name, 'm5ops.log');
  return `m5ops.log:\n${existsSync(log) ? readFileSync(log, 'utf8').slice(-4000) : '(none)'}\nstderr:\n${res.stderr.slice(-4000)}`;
};
const job = (name: string, text: string) => {
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
};

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'm5dev-run-'));
  home = join(scratch, 'home');
  env = { M5DEV_HOME: home };
  const img = await cli(['--json', 'image', 'build'], env);
  expect(img.code, img.stderr).toBe(0);
  image = await gem5Standin(fixture(), (JSON.parse(img.stdout) as { tag: string }).tag);
  imageSha = sha256(image);
}, 900_000);

afterAll(async () => {
  await removeContainersOfHome(home);
  rmSync(scratch, { recursive: true, force: true });
});

describe('m5dev run: a gem5-style disk image, no SSH and no cloud-init', () => {
  it('streams the console, ends at the guest\'s fail with its code, and leaves m5out and the console in --out', async () => {
    const script = job('job.sh', 'echo "hello from the job"\necho result > /tmp/r\nm5 writefile /tmp/r sub/result.txt\nm5 fail 3\necho "never printed"\n');
    const out = join(scratch, 'out');
    const junit = join(scratch, 'job.xml');
    const res = await cli(['run', '--disk', image, '--exits', '2', '--m5ops-readfile', script, '--out', out, '--junit', junit, '--timeout', '600'], env);
    expect(res.code, res.stderr).toBe(3);
    // The job's report for CI: failed with what ended it, the console as system-out.
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toMatch(/<testsuite name="m5dev run run" tests="1" failures="1"/);
    expect(xml).toContain("the guest's m5 fail 3");
    expect(xml).toMatch(/<system-out><!\[CDATA\[[\s\S]*hello from the job/);
    execFileSync('xmllint', ['--noout', '--schema', JUNIT_XSD, junit], { stdio: 'pipe' });
    // The image's own init and hook, then the script, in order, on stdout.
    expect(res.stdout, what(res)).toMatch(/standin-init: booted[\s\S]*after_boot: running the host's script[\s\S]*hello from the job/);
    expect(res.stdout).not.toMatch(/never printed/);
    expect(res.stderr).toMatch(/guest m5 exit 1 of 2/);
    expect(res.stderr).toMatch(/job ended in [\d.]+ s: .* fail\(0x0, 0x3\)/);
    expect(readFileSync(join(out, 'sub', 'result.txt'), 'utf8')).toBe('result\n');
    expect(readFileSync(join(out, 'system.terminal'), 'utf8')).toMatch(/standin-init: booted[\s\S]*hello from the job/);
    // Kept in the instance too; the VM is gone; the user's image was never written.
    expect(readFileSync(join(home, 'instances', 'run', 'console.log'), 'utf8')).toMatch(/hello from the job/);
    expect(await containersOfHome(home)).toEqual([]);
    expect(sha256(image)).toBe(imageSha);
  }, 900_000);

  it('a raw image, ended at its 2nd exit (code 0, --json), with the machine flags named; the last run\'s m5out is not this one\'s', async () => {
    const raw = join(scratch, 'gem5-standin.raw');
    execFileSync('qemu-img', ['convert', '-O', 'raw', image, raw]);
    const out = join(scratch, 'out-raw');
    // The machine flags: one vCPU, the defaults named, instruction counting on, no checkpoint kept.
    const machine = ['--cpus', '1', '--cpu', 'cortex-a57', '--accel', 'tcg', '--tcg-cache', '256', '--m5ops-addr', '0x10010000', '--m5ops-stats', 'insns', '--max-checkpoints', '0'];
    const text = 'echo "job two"\necho "cpus $(nproc)"\nm5 op 0x43 0 0 >/dev/null\nm5 op 0x41 0 0 >/dev/null\n';
    const res = await cli(['--json', 'run', '--disk', raw, '--exits', '2', '--m5ops-readfile', job('ok.sh', text), '--out', out, '--timeout', '600', ...machine], env);
    expect(res.code, res.stderr).toBe(0);
    // --json: the result alone on stdout, the console on stderr.
    const r = JSON.parse(res.stdout) as { ended: string; code: number; exitStatus: number; out: string; checkpoints: number[] };
    expect(r).toMatchObject({ ended: 'exit', code: 0, exitStatus: 0, out, checkpoints: [] });
    expect(res.stderr, what(res)).toMatch(new RegExp(`after_boot: running the host's script \\(${Buffer.byteLength(text)} bytes\\)[\\s\\S]*job two[\\s\\S]*cpus 1\\s`));
    expect(res.stderr).toMatch(/checkpoint 1 not saved: more than 0 \(--max-checkpoints\); the guest runs on/);
    expect(readFileSync(join(out, 'stats.txt'), 'utf8')).toMatch(/^simInsts\s+[1-9]\d*\s/m);
    expect(existsSync(join(out, 'sub'))).toBe(false);
    expect(readFileSync(join(out, 'system.terminal'), 'utf8')).toMatch(/job two/);
    expect(await containersOfHome(home)).toEqual([]);
  }, 900_000);

  it('a job that never reaches its exit times out (exit 23), leaving no VM', async () => {
    const junit = join(scratch, 'timeout.xml');
    const res = await cli(['run', '--disk', image, '--exits', '3', '--m5ops-readfile', job('short.sh', 'true\n'), '--junit', junit, '--timeout', '60'], env);
    expect(res.code, res.stderr).toBe(23);
    expect(readFileSync(junit, 'utf8')).toMatch(/failures="1"[\s\S]*did not end within 60 s/);
    expect(res.stderr).toMatch(/did not end within 60 s \(2 of 3 m5 exits, no fail\)/);
    expect(res.stdout).toMatch(/standin-init: the hook returned/);
    expect(await containersOfHome(home)).toEqual([]);
  }, 900_000);

  it('a checkpoint the guest takes restores into a second run that continues from it, not from boot; a delayed one is taken after its delay; init_param answers --m5ops-param', { timeout: 900_000, retry: 1 }, async () => {
    // /tmp is a tmpfs in the stand-in: the tokens live in the guest's memory only.
    const random = 'od -An -N8 -tx8 /dev/urandom | tr -d " "';
    const script = job('ckpt.sh', [
      `echo "token-$(${random})" > /tmp/x`,
      'echo "before the checkpoint"',
      'm5 op 0x43 0 0 >/dev/null',
      'echo "after the checkpoint, param $(m5 op 0x30 0x657a6973 0)"', // init_param("size"), packed as gem5's m5 packs it
      'm5 writefile /tmp/x token.txt',
      // Checkpoint 2, half a second of the guest's time after the op: after /tmp/y holds its token.
      'm5 op 0x43 500000000 0 >/dev/null',
      `echo "later-$(${random})" > /tmp/y`,
      'sleep 3',
      'm5 writefile /tmp/y later.txt',
      '',
    ].join('\n'));
    const out1 = join(scratch, 'ckpt-1');
    const first = await cli(['--json', 'run', '--disk', image, '--exits', '2', '--m5ops-readfile', script, '--out', out1, '--timeout', '600'], env);
    expect(first.code, first.stderr).toBe(0);
    // Once seen in a CI run only (no checkpoint, a run of 14 s): what the guest did, should it come back.
    const why = () => `${first.stderr}\n--- m5ops.log ---\n${readFileSync(join(home, 'instances', 'run', 'm5ops.log'), 'utf8')}`;
    expect(JSON.parse(first.stdout), why()).toMatchObject({ ended: 'exit', checkpoints: [1, 2] });
    expect(first.stderr).toMatch(/checkpoint 1 saved \(the guest stood still \d+ ms\)/);
    expect(first.stderr).toMatch(/after the checkpoint, param 0/);
    const token = readFileSync(join(out1, 'token.txt'), 'utf8');
    expect(token).toMatch(/^token-[0-9a-f]{16}\n$/);
    const later = readFileSync(join(out1, 'later.txt'), 'utf8');
    expect(later).toMatch(/^later-[0-9a-f]{16}\n$/);
    const list = await cli(['--json', 'checkpoints', '--name', 'run'], env);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout)).toMatchObject([{ index: 1, format: 2 }, { index: 2, format: 2 }]);
    // A new instance from checkpoint 1: it goes on from the op (the hook's last exit is its first).
    const out2 = join(scratch, 'ckpt-2');
    const second = await cli(['run', '--from-checkpoint', 'run:1', '--name', 'restored', '--exits', '1', '--m5ops-param', 'size=42', '--out', out2, '--timeout', '600'], env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(/Restore checkpoint 1/);
    expect(second.stdout).toMatch(/after the checkpoint, param 42/);
    expect(second.stdout).not.toMatch(/standin-init: booted|before the checkpoint/);
    expect(readFileSync(join(out2, 'token.txt'), 'utf8')).toBe(token);
    // From checkpoint 2: the guest is past the write of /tmp/y (taken after the delay, not at the op).
    const out3 = join(scratch, 'ckpt-3');
    const third = await cli(['run', '--from-checkpoint', 'run:2', '--name', 'restored', '--exits', '1', '--out', out3, '--timeout', '600'], env);
    expect(third.code, third.stderr).toBe(0);
    expect(third.stdout).not.toMatch(/after the checkpoint/);
    expect(readFileSync(join(out3, 'later.txt'), 'utf8')).toBe(later);
    expect(await containersOfHome(home)).toEqual([]);
    // Another machine cannot take it.
    const other = await cli(['run', '--from-checkpoint', 'run:1', '--name', 'other', '--memory', '1024', '--timeout', '60'], env);
    expect(other.code, other.stderr).toBe(2);
    expect(other.stderr).toMatch(/the checkpoint was taken on another machine/);
    expect(await containersOfHome(home)).toEqual([]);
  });

  it('refuses an image that names another file, a missing one, and up on a job\'s instance, before anything boots', async () => {
    const backed = join(scratch, 'backed.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', image, backed]);
    const b = await cli(['run', '--disk', backed, '--name', 'refused'], env);
    expect(b.code, b.stderr).toBe(2);
    expect(b.stderr).toMatch(/cannot be run: it is a qcow2 with a backing file/);
    expect(b.stderr).toMatch(/hint: Flatten it/);
    const missing = await cli(['run', '--disk', join(scratch, 'nope.img')], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/nope\.img is not a file/);
    const neither = await cli(['run'], env);
    expect(neither.code).toBe(2);
    expect(neither.stderr).toMatch(/run boots --disk IMAGE or --from-checkpoint NAME:K/);
    const nothing = await cli(['run', '--from-checkpoint', 'run:9', '--name', 'x'], env);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toMatch(/instance run has no checkpoint 9/);
    const up = await cli(['up', '--name', 'run'], env);
    expect(up.code).toBe(2);
    expect(up.stderr).toMatch(/instance run runs disk-image jobs \(m5dev run\)/);
    expect(await containersOfHome(home)).toEqual([]);
  }, 300_000);

  it("--kernel: m5dev's build of the kernel boots the image; an initramfs shows the image's own init that kernel's module tree, whose `modprobe gem5_bridge` loads the project's module; the image is never written", async () => {
    // The kernel the kernel-build tier built, in the tests' shared kernel home (a cache hit here).
    const kt = kernelTarball();
    const kenv = { M5DEV_HOME: kernelTestHome() };
    const built = await cli(['--json', ...kernelBuildArgs(kt, `file://${join(kt.dir, kt.file)}`)], kenv);
    expect(built.code, built.stderr).toBe(0);
    const release = (JSON.parse(built.stdout) as { release: string }).release;
    const name = runInstanceName('run-kernel');
    const script = job('kernel.sh', 'echo "release $(uname -r)"\necho "bridge base $(cat /sys/module/m5/parameters/gem5_bridge_baseaddr)"\necho "device $(stat -c %A /dev/gem5_bridge)"\nm5 exit\n');
    try {
      const res = await cli(['run', '--name', name, '--disk', image, '--kernel', kt.version, '--exits', '2', '--m5ops-readfile', script, '--timeout', '900'], kenv);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stderr).toMatch(/Initramfs: m5dev's init, \/lib\/modules\/\S+ with m5\.ko/);
      // The initramfs found the root itself (no root= given), bound the modules, ran the image's init.
      expect(res.stdout).toMatch(/m5dev-initramfs: root \/dev\/vda1 mounted read-write/);
      expect(res.stdout).toMatch(/m5dev-initramfs: running \/sbin\/init/);
      // The image's init loaded the bridge (gem5's parameters) from the built kernel's tree: no fallback.
      expect(res.stdout).toMatch(/standin-init: booted/);
      expect(res.stdout).not.toMatch(/no gem5_bridge module/);
      expect(res.stdout).toMatch(new RegExp(`release ${release.replace(/[.+]/g, '\\$&')}\\s`));
      expect(res.stdout).toMatch(/bridge base 268500992\s/); // 0x10010000
      expect(res.stdout).toMatch(/device crw-rw-rw-/);
      // --append: the root named, mounted read-only (the job writes only to its tmpfs).
      const ro = await cli(['run', '--name', name, '--disk', image, '--kernel', kt.version, '--append', 'root=/dev/vda1 ro console=ttyAMA0', '--exits', '2', '--m5ops-readfile', script, '--timeout', '900'], kenv);
      expect(ro.code, ro.stderr).toBe(0);
      expect(ro.stdout).toMatch(/m5dev-initramfs: root \/dev\/vda1 mounted read-only/);
      expect(ro.stdout).toMatch(/bridge base 268500992\s/);
      expect(sha256(image)).toBe(imageSha);
      expect(await containersOfHome(kenv.M5DEV_HOME, name)).toEqual([]);
    } finally {
      await cli(['destroy', '--name', name], kenv);
    }
  }, 900_000);
});
