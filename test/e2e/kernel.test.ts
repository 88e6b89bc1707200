/**
 * The exact-kernel module loop end to end: a kernel tarball served over loopback (Debian's
 * linux-source in place of kernel.org), cross-built in the toolchain container, direct-booted in
 * the fixture guest; the m5 module built against that tree, loaded over SSH and tested in the guest.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { cli, JUNIT_XSD, ROOT, startCli, type CliResult } from '../helpers/cli.js';
import { serveDir, type FileServer } from '../helpers/http-server.js';
import { fixture, freePort, type Fixture } from '../helpers/fixture.js';
import { buildM5op } from '../helpers/m5op.js';
import { kernelBuildArgs, kernelTarball, kernelTestHome, runInstanceName, sweepDeadRunInstances, type KernelTarball } from '../helpers/kernel.js';
import { removeContainersOfHome } from '../helpers/docker.js';
import { expectShareHoldsTheLine } from '../helpers/share-boundary.js';
import { parseStats } from '../../src/m5ops/stats.js';

let fx: Fixture;
let kt: KernelTarball;
let images: FileServer;
let mirror: FileServer;
let home: string;
let env: NodeJS.ProcessEnv;
let port: number;
let kernelUrl: string;
/** This run's own instance in the shared kernel home (helpers/kernel.ts). */
const NAME = runInstanceName('kmod');
/** The seed workflow's shared tree (removed after the last test). */
let seedWork: string | undefined;
/** A ramfs (no user extended attributes, Unix modes) the seed workflow also shares (removed after the last test). */
let ramShare: string | undefined;


beforeAll(async () => {
  fx = fixture();
  kt = kernelTarball();
  images = await serveDir(fx.dir);
  mirror = await serveDir(kt.dir);
  kernelUrl = `${mirror.url}/${kt.file}`;
  home = kernelTestHome();
  env = { M5DEV_HOME: home };
  port = await freePort();
  await sweepDeadRunInstances(home, 'kmod', env); // a killed earlier run's instance
  // The kernel kernel-build.test.ts built and tested (found in the shared cache; built here if that file has not run).
  const built = await cli(kernelArgs(kt.version), env);
  expect(built.code, built.stderr).toBe(0);
}, 3_600_000);

afterAll(async () => {
  await cli(['destroy', '--name', NAME], env);
  await removeContainersOfHome(home, NAME); // the kernel home is shared with files of the other lane
  if (seedWork) rmSync(seedWork, { recursive: true, force: true });
  if (ramShare) {
    execFileSync('umount', [ramShare]);
    rmSync(ramShare, { recursive: true, force: true });
  }
  await images?.close();
  await mirror?.close();
  if (kt) rmSync(kt.dir, { recursive: true, force: true });
});

/** In the guest: the compiler from the .debs shared at /opt/debs. */
const INSTALL_DEBS = readFileSync(join(ROOT, 'scripts', 'guest-cc-install.sh'), 'utf8');

const filesIn = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
const kernelArgs = (version: string, sha256 = kt.sha256) => kernelBuildArgs(kt, kernelUrl, { version, sha256 });

describe('the module loop on the cross-built kernel', () => {
  it('direct-boots the built kernel: uname -r equals the built release', async () => {
    const res = await cli(['up', '--name', NAME, '--kernel', kt.version, '--no-ram-file', '--image-url', `${images.url}/${fx.image}`, '--disk', 'overlay', '--ssh-port', String(port), '--boot-timeout', '600'], env);
    expect(res.code, res.stderr).toBe(0);
    const uname = await cli(['exec', '--name', NAME, '--', 'uname', '-r'], env);
    expect(uname.code, uname.stderr).toBe(0);
    expect(uname.stdout.trim()).toBe(kt.version);
    const consoleText = readFileSync(join(home, 'instances', NAME, 'console.log'), 'utf8');
    expect(consoleText).toContain(`Linux version ${kt.version} (m5dev@m5dev)`);
    expect(consoleText).not.toMatch(/BdsDxe|EFI stub/);
  }, 900_000);

  it('module test: builds m5 against the tree, loads it, passes its unprivileged test, unloads cleanly', async () => {
    const junit = join(mkdtempSync(join(tmpdir(), 'm5dev-junit-')), 'module-test.xml');
    const res = await cli(['--json', 'module', 'test', '--name', NAME, '--junit', junit], env);
    expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);
    // The JUnit report: one testcase per check, none failed, the guest's output beside them, valid by Jenkins' JUnit schema.
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toMatch(/<testsuite name="m5dev module test module" tests="6" failures="0" errors="0" skipped="0"/);
    expect(xml.match(/<testcase /g)).toHaveLength(6);
    expect(xml).toMatch(/<system-out><!\[CDATA\[[\s\S]*^1\.\.6$/m);
    execFileSync('xmllint', ['--noout', '--schema', JUNIT_XSD, junit], { stdio: 'pipe' });
    const out = JSON.parse(res.stdout) as { modules: string[]; vermagic: string; loadLog: string; test: { passed: number; planned: number; failed: string[] } };
    expect(out.modules).toEqual(['m5.ko']);
    expect(out.vermagic.split(' ')[0]).toBe(kt.version);
    expect(out.loadLog).toMatch(/m5: \/dev\/gem5_bridge maps m5ops at 0x10010000, 0x10000 bytes/);
    expect(out.test).toMatchObject({ passed: 6, planned: 6, failed: [] });
    const after = await cli(['exec', '--name', NAME, '--', 'grep -c "^m5 " /proc/modules; test -e /dev/gem5_bridge; echo dev=$?'], env);
    expect(after.stdout.trim().split('\n')).toEqual(['0', 'dev=1']);
    // --kernel names the build (the one the guest runs), --param reaches insmod: the test sees the range it set.
    const sized = await cli(['--json', 'module', 'test', '--name', NAME, '--kernel', kt.version, '--param', 'gem5_bridge_rangesize=0x20000'], env);
    expect(sized.code, `${sized.stdout}\n${sized.stderr}`).toBe(0);
    const s = JSON.parse(sized.stdout) as { loadLog: string; test: { passed: number } };
    expect(s.loadLog).toMatch(/maps m5ops at 0x10010000, 0x20000 bytes/);
    expect(s.test.passed).toBe(6);
  }, 600_000);

  it('edit → load: a changed source is rebuilt and the new module is what runs', async () => {
    const src = mkdtempSync(join(tmpdir(), 'm5dev-module-edit-'));
    cpSync(join(ROOT, 'module'), src, { recursive: true });
    const c = join(src, 'm5.c');
    const token = `edit-${randomUUID().slice(0, 8)}`; // a new source every run: never a cache hit
    writeFileSync(c, readFileSync(c, 'utf8').replace('pr_info("m5: unloaded\\n")', `pr_info("m5: unloaded (${token})\\n")`));
    const load = await cli(['module', 'load', '--name', NAME, '--src', src, '--param', 'gem5_bridge_baseaddr=0x10020000'], env);
    expect(load.code, load.stderr).toBe(0);
    expect(load.stderr).toMatch(/Built m5\.ko for/);
    expect(load.stdout).toContain('maps m5ops at 0x10020000');
    const unload = await cli(['exec', '--name', NAME, '--', 'sudo rmmod m5 && sudo dmesg | tail -n 1'], env);
    expect(unload.stdout).toContain(`m5: unloaded (${token})`);
    rmSync(src, { recursive: true, force: true });
  }, 600_000);

  it('module load --src takes any Kbuild tree (another .ko name, no test program) and says what it added', async () => {
    const src = mkdtempSync(join(tmpdir(), 'm5dev-module-any-'));
    writeFileSync(join(src, 'Kbuild'), 'obj-m := hello_m5dev.o\n');
    writeFileSync(
      join(src, 'hello_m5dev.c'),
      [
        '#include <linux/module.h>',
        '#include <linux/miscdevice.h>',
        '#include <linux/fs.h>',
        'static char *greeting = "hello";',
        'module_param(greeting, charp, 0444);',
        'static int level = 1;',
        'module_param(level, int, 0644);',
        'static const struct file_operations fops = { .owner = THIS_MODULE };',
        'static struct miscdevice dev = { .minor = MISC_DYNAMIC_MINOR, .name = "hello_m5dev", .fops = &fops };',
        'static int __init hello_init(void) { pr_info("hello_m5dev: %s\\n", greeting); return misc_register(&dev); }',
        'static void __exit hello_exit(void) { misc_deregister(&dev); }',
        'module_init(hello_init);',
        'module_exit(hello_exit);',
        'MODULE_LICENSE("GPL");',
        '',
      ].join('\n'),
    );
    const res = await cli(['--json', 'module', 'load', '--name', NAME, '--src', src, '--param', 'greeting=hi', '--param', 'level=3'], env);
    expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);
    const out = JSON.parse(res.stdout) as { modules: string[]; devices: string[]; parameters: Record<string, string>; loadLog: string };
    expect(out.modules).toEqual(['hello_m5dev.ko']);
    expect(out.devices).toEqual(['/dev/hello_m5dev']);
    expect(out.parameters).toEqual({ 'hello_m5dev.greeting': 'hi', 'hello_m5dev.level': '3' });
    expect(out.loadLog).toContain('hello_m5dev: hi');
    // The m5 module: its device node and both parameters, in words.
    const m5 = await cli(['module', 'load', '--name', NAME], env);
    expect(m5.code, m5.stderr).toBe(0);
    expect(m5.stdout).toContain('device /dev/gem5_bridge');
    expect(m5.stdout).toMatch(/parameter m5\.gem5_bridge_baseaddr = \d+/);
    await cli(['exec', '--name', NAME, '--', 'sudo rmmod hello_m5dev m5'], env);
    rmSync(src, { recursive: true, force: true });
  }, 600_000);

  it('module failures in the guest are exit 12 with the guest\'s words, and the guest runs on: an init that fails, a test that fails, a test that cannot be copied in, a module that will not unload', async () => {
    const bad = mkdtempSync(join(tmpdir(), 'm5dev-module-init-fails-'));
    writeFileSync(join(bad, 'Kbuild'), 'obj-m := refuses_m5dev.o\n');
    writeFileSync(
      join(bad, 'refuses_m5dev.c'),
      ['#include <linux/module.h>', 'static int __init refuses_init(void) { pr_info("refuses_m5dev: no device here\\n"); return -ENODEV; }', 'module_init(refuses_init);', 'MODULE_LICENSE("GPL");', ''].join('\n'),
    );
    const load = await cli(['module', 'load', '--name', NAME, '--src', bad], env);
    expect(load.code, load.stderr).toBe(12);
    expect(load.stderr).toMatch(/copying or loading the module in the guest failed/);
    expect(load.stderr).toMatch(/No such device|refuses_m5dev/);
    // A test program that reports a failed check: the module it tested is built and loaded, the run says which check.
    const src = mkdtempSync(join(tmpdir(), 'm5dev-module-test-fails-'));
    cpSync(join(ROOT, 'module'), src, { recursive: true });
    writeFileSync(join(src, 'test', 'm5_test.c'), '#include <stdio.h>\nint main(void) { puts("1..2"); puts("ok 1 - fine"); puts("not ok 2 - made to fail"); return 1; }\n');
    // Under GitHub Actions: the failed check and the error are annotations; the JUnit report is written all the same.
    const junit = join(src, 'report.xml');
    const test = await cli(['module', 'test', '--name', NAME, '--src', src, '--junit', junit], { ...env, GITHUB_ACTIONS: 'true' });
    expect(test.code, test.stderr).toBe(12);
    expect(test.stdout).toContain('::error title=module test::not ok - made to fail\n');
    expect(test.stdout).toMatch(/^::error title=m5dev \(exit 12\)::1 check\(s\) failed in the guest/m);
    const report = readFileSync(junit, 'utf8');
    expect(report).toMatch(/tests="2" failures="1"/);
    expect(report).toContain('<failure message="not ok 2 - made to fail" type="TAP">');
    expect(test.stderr).toMatch(/1 check\(s\) failed in the guest \(exit 1\)/);
    expect(test.stderr).toContain('not ok 2 - made to fail');
    const still = await cli(['exec', '--name', NAME, '--', 'grep -c refuses_m5dev /proc/modules; sudo rmmod m5; echo alive'], env);
    expect(still.stdout.trim().split('\n')).toEqual(['0', 'alive']);
    // The test program cannot be copied in (its temporary name in the guest is a directory of root's).
    expect((await cli(['exec', '--name', NAME, '--', 'sudo mkdir -p /tmp/m5-test.part/x'], env)).code).toBe(0);
    const noCopy = await cli(['module', 'test', '--name', NAME], env);
    expect(noCopy.code, noCopy.stderr).toBe(12);
    expect(noCopy.stderr).toMatch(/copying the test to the guest failed/);
    expect(noCopy.stderr).toMatch(/Is a directory|Permission denied/);
    expect((await cli(['exec', '--name', NAME, '--', 'sudo rm -rf /tmp/m5-test.part; sudo rmmod m5; echo alive'], env)).stdout).toBe('alive\n');
    // A test whose child keeps /dev/gem5_bridge open: the module is in use, so it does not unload.
    const holds = mkdtempSync(join(tmpdir(), 'm5dev-module-held-'));
    cpSync(join(ROOT, 'module'), holds, { recursive: true });
    writeFileSync(
      join(holds, 'test', 'm5_test.c'),
      [
        '#include <fcntl.h>',
        '#include <stdio.h>',
        '#include <unistd.h>',
        'int main(void) {',
        '  int fd = open("/dev/gem5_bridge", O_RDWR);',
        '  puts("1..1"); printf("%s 1 - opened\\n", fd < 0 ? "not ok" : "ok"); fflush(stdout);',
        '  if (fd >= 0 && fork() == 0) { setsid(); close(0); close(1); close(2); sleep(120); }',
        '  return fd < 0;',
        '}',
        '',
      ].join('\n'),
    );
    const held = await cli(['module', 'test', '--name', NAME, '--src', holds], env);
    expect(held.code, held.stderr).toBe(12);
    expect(held.stderr).toMatch(/unloading the module failed or the kernel complained/);
    expect(held.stderr).toMatch(/in use/);
    const freed = await cli(['exec', '--name', NAME, '--', 'sudo pkill -x m5-test; for i in $(seq 50); do sudo rmmod m5 2>/dev/null && break; sleep 0.2; done; grep -q \'^m5 \' /proc/modules || echo alive'], env);
    expect(freed.stdout, freed.stderr).toBe('alive\n');
    rmSync(bad, { recursive: true, force: true });
    rmSync(src, { recursive: true, force: true });
    rmSync(holds, { recursive: true, force: true });
  }, 600_000);

  describe('m5ops answered by the host (the module, an unprivileged arm64 client, QEMU)', () => {
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const exec = (script: string) => cli(['exec', '--name', NAME, '--', script], env);
    /** Start `m5ops wait`, and return once it has read the log (so the op that follows is "next"). */
    const startWait = async (extra: string[] = []) => {
      const run = startCli(['m5ops', 'wait', '--name', NAME, '--timeout', '300', ...extra], env);
      let err = '';
      run.child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
      const deadline = Date.now() + 60_000;
      while (!err.includes(`waiting for ${NAME}'s next m5 exit or fail`)) {
        if (Date.now() > deadline || run.child.exitCode !== null) throw new Error(`m5ops wait did not start: ${err}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      return { done: run.done };
    };
    let scratch: string;

    beforeAll(async () => {
      scratch = mkdtempSync(join(tmpdir(), 'm5dev-m5ops-'));
      // The project's own m5op client, cross-built static in the toolchain image, copied into the guest.
      const img = await cli(['--json', 'image', 'build'], env);
      expect(img.code, img.stderr).toBe(0);
      const tag = (JSON.parse(img.stdout) as { tag: string }).tag;
      expect((await cli(['cp', '--name', NAME, await buildM5op(tag), 'guest:/home/ubuntu'], env)).code).toBe(0);
      expect((await cli(['module', 'load', '--name', NAME], env)).code).toBe(0);
    }, 900_000);

    afterAll(async () => {
      await exec('sudo rmmod m5 || true');
      rmSync(scratch, { recursive: true, force: true });
    });

    it('sum(1..6) = 21 from an unprivileged user through /dev/gem5_bridge; status says where the device is', async () => {
      const sum = await exec('id -u; ./m5op sum 1 2 3 4 5 6; ./m5op op 0x23 0xffffffffffffffff 2 0 0 0 0');
      expect(sum.code, sum.stderr).toBe(0);
      expect(sum.stdout.trim().split('\n')).toEqual(['1000', '21', '1']);
      const st = JSON.parse((await cli(['--json', 'status', '--name', NAME], env)).stdout) as { m5ops: { addr: string; size: string; exit: string } };
      expect(st.m5ops).toMatchObject({ addr: '0x10010000', size: '0x10000', exit: 'continue' });
    }, 300_000);

    it('readfile: a 300 kB and a 5 MB host file (a 4 MiB call) byte-identical in the guest, and again after it changed on the running guest', async () => {
      for (const size of [300_000, 5_000_000, 123_457]) {
        const data = randomBytes(size);
        writeFileSync(join(scratch, 'readfile.bin'), data);
        const set = await cli(['m5ops', 'readfile', '--name', NAME, join(scratch, 'readfile.bin')], env);
        expect(set.code, set.stderr).toBe(0);
        const got = await exec('./m5op readfile > /tmp/r && stat -c %s /tmp/r && sha256sum < /tmp/r | cut -d" " -f1 && ./m5op readfile 4097 | sha256sum | cut -d" " -f1');
        expect(got.code, got.stderr).toBe(0);
        expect(got.stdout.trim().split('\n')).toEqual([String(size), sha(data), sha(data.subarray(4097))]);
      }
    }, 300_000);

    it('writefile: 300 kB from the guest byte-identical on the host (m5ops out); a ../ name stays inside m5out', async () => {
      const made = await exec('head -c 300001 /dev/urandom > /tmp/w && ./m5op writefile /tmp/w run1/w.bin && ./m5op writefile /tmp/w ../../escape.bin && sha256sum < /tmp/w | cut -d" " -f1');
      expect(made.code, made.stderr).toBe(0);
      const [n1, n2, guestSha] = made.stdout.trim().split('\n');
      expect([n1, n2]).toEqual(['300001', '300001']);
      const list = await cli(['--json', 'm5ops', 'out', '--name', NAME], env);
      expect(list.code, list.stderr).toBe(0);
      expect((JSON.parse(list.stdout) as { files: { path: string; size: number }[] }).files).toEqual(
        expect.arrayContaining([{ path: 'escape.bin', size: 300001 }, { path: 'run1/w.bin', size: 300001 }]),
      );
      const dest = join(scratch, 'out');
      expect((await cli(['m5ops', 'out', '--name', NAME, dest], env)).code).toBe(0);
      expect(sha(readFileSync(join(dest, 'run1', 'w.bin')))).toBe(guestSha);
      expect(statSync(join(dest, 'run1', 'w.bin')).uid).toBe(process.getuid!());
      // Nothing outside m5out: not beside the instance, not in the home.
      expect(existsSync(join(home, 'instances', 'escape.bin'))).toBe(false);
      expect(existsSync(join(home, 'escape.bin'))).toBe(false);
      const log = JSON.parse((await cli(['--json', 'm5ops', 'log', '--name', NAME], env)).stdout) as { op: string; file?: string; note?: string }[];
      expect(log.find((e) => e.op === 'write_file' && e.file === 'escape.bin')?.note).toMatch(/the guest asked for "\.\.\/\.\.\/escape\.bin"/);
    }, 300_000);

    it("stats: dump_stats appends gem5's stats.txt to m5out, the virtual clock since the last reset", async () => {
      const dumped = await exec('./m5op op 0x40 0 0 && sleep 1 && ./m5op op 0x42 0 0 && ./m5op op 0x41 0 0');
      expect(dumped.code, dumped.stderr).toBe(0);
      const dest = join(scratch, 'stats-out');
      expect((await cli(['m5ops', 'out', '--name', NAME, dest], env)).code).toBe(0);
      const blocks = parseStats(readFileSync(join(dest, 'stats.txt'), 'utf8'));
      expect(blocks.length).toBeGreaterThanOrEqual(2);
      type Block = { simSeconds: number; simTicks: number; simFreq: number; hostSeconds: number; simInsts?: number };
      const [slept, after] = blocks.slice(-2) as [Block, Block];
      // A second of the guest's time passed between the reset and the first dump; the second dump follows a reset.
      expect(slept.simSeconds).toBeGreaterThan(0.9);
      expect(Math.abs(slept.simTicks / 1e12 - slept.simSeconds)).toBeLessThan(1e-6);
      expect(slept.simFreq).toBe(1e12);
      expect(slept.hostSeconds).toBeGreaterThan(0);
      expect(after.simSeconds).toBeLessThan(slept.simSeconds);
      expect(slept.simInsts).toBeUndefined(); // not counted unless --m5ops-stats insns
    }, 300_000);

    it('the boundary: readfile never writes a page the guest user may not; m5out counts apparent size and refuses control characters; a FIFO never blocks QEMU', async () => {
      // A root-owned file the user can only read, mapped read-only and shared: the host must not write its page cache.
      expect((await exec('sudo sh -c "printf original > /etc/m5dev-ro && chmod 0644 /etc/m5dev-ro"')).code).toBe(0);
      // (Read from the page cache: a write through the mapping would show here, on disk or not.)
      const into = await exec('./m5op readfile-into /etc/m5dev-ro; cat /etc/m5dev-ro');
      expect(into.stdout, into.stderr).toBe('0\noriginal');
      // A writable buffer still gets every byte (the readfile is the 123457-byte one of the test above).
      expect((await exec('./m5op readfile | wc -c')).stdout.trim()).toBe('123457');
      // One byte at 8 GiB costs 8 GiB of quota (apparent size), so it does not fit; a name with a control character is refused.
      // Each is a short write the guest sees (0 bytes taken: m5op fails), never a silent success.
      const far = await exec('printf x > /tmp/one; ./m5op writefile /tmp/one far.bin 8589934592; echo "far $?"; ./m5op writefile /tmp/one "$(printf \'bad\\033]52;c;eA==\\007\')"; echo "ctl $?"');
      expect(far.stdout.trim().split('\n'), far.stderr).toEqual(['far 1', 'ctl 1']);
      expect(far.stderr).toMatch(/writefile took 0 of 1 bytes at offset 8589934592/);
      // Each ends the run as gem5's would (its simulation dies of it): m5ops wait returns code 1, once each.
      for (const what of [/far\.bin.*m5out is full/, /control character: refused/]) {
        const w = await cli(['m5ops', 'wait', '--name', NAME, '--timeout', '10'], env);
        expect(w.code, w.stderr).toBe(1);
        expect(w.stderr).toMatch(what);
      }
      const log = JSON.parse((await cli(['--json', 'm5ops', 'log', '--name', NAME], env)).stdout) as { op: string; file?: string; note?: string }[];
      expect(log.filter((e) => e.op === 'read_file').at(-2)?.note).toMatch(/not writable by the guest after 0 bytes/);
      expect(log.find((e) => e.op === 'write_file' && e.file === 'far.bin')?.note).toMatch(/m5out is full \(quota 8589934592 bytes of apparent size/);
      expect(log.some((e) => e.op === 'write_file' && /the file name has a control character: refused/.test(e.note ?? ''))).toBe(true);
      const files = (JSON.parse((await cli(['--json', 'm5ops', 'out', '--name', NAME], env)).stdout) as { files: { path: string; size: number }[] }).files;
      expect(files.find((f) => f.path === 'far.bin')?.size).toBe(0);
      expect(files.some((f) => f.path.startsWith('bad'))).toBe(false);
      // Clearing m5out waits for the VM to stop (its QEMU counts the quota).
      const clear = await cli(['m5ops', 'out', '--clear', '--name', NAME], env);
      expect(clear.code).toBe(2);
      expect(clear.stderr).toMatch(/is running: m5out's quota is counted by its QEMU/);
      // A FIFO put where the readfile lives: the guest's readfile gets nothing at once, QEMU does not block.
      const readfile = join(home, 'instances', NAME, 'm5ops-readfile');
      const kept = readFileSync(readfile);
      rmSync(readfile);
      execFileSync('mkfifo', [readfile]);
      const fifo = await exec('timeout 60 ./m5op readfile | wc -c; ./m5op sum 1 2 3 4 5 6');
      expect(fifo.stdout.trim().split('\n')).toEqual(['0', '21']);
      rmSync(readfile);
      writeFileSync(join(scratch, 'readfile.bin'), kept);
      expect((await cli(['m5ops', 'readfile', '--name', NAME, join(scratch, 'readfile.bin')], env)).code).toBe(0);
    }, 300_000);

    it('m5ops wait returns the code of `m5op fail 7`; an unknown op answers 0; the same after suspend → resume', async () => {
      const waiting = await startWait();
      const failed = await exec('./m5op fail 7; ./m5op op 0x55 1 2');
      expect(failed.code, failed.stderr).toBe(0);
      expect(failed.stdout.trim()).toBe('0');
      const res = await waiting.done;
      expect(res.code, res.stderr).toBe(7);
      const st = JSON.parse((await cli(['--json', 'status', '--name', NAME], env)).stdout) as { m5ops: { lastExit: { op: string; code: number } } };
      expect(st.m5ops.lastExit).toMatchObject({ op: 'fail', code: 7 });
      expect((await cli(['suspend', '--name', NAME], env)).code).toBe(0);
      const resumed = await cli(['--json', 'up', '--name', NAME], env);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(JSON.parse(resumed.stdout)).toMatchObject({ resumed: true });
      const again = await startWait(['--json']);
      const after = await exec('./m5op sum 1 2 3 4 5 6 && ./m5op readfile | wc -c && ./m5op exit');
      expect(after.stdout.trim().split('\n')).toEqual(['21', '123457']);
      const exited = await again.done;
      expect(exited.code, exited.stderr).toBe(0);
      expect(JSON.parse(exited.stdout)).toMatchObject({ op: 'exit', code: 0 });
      // No race: a job that ended before CI called wait is not lost; each exit is returned once.
      expect((await exec('./m5op fail 5')).code).toBe(0);
      const late = await cli(['m5ops', 'wait', '--name', NAME, '--timeout', '30'], env);
      expect(late.code, late.stderr).toBe(5);
      expect(late.stderr).not.toMatch(/waiting for/);
      const none = await cli(['m5ops', 'wait', '--name', NAME, '--timeout', '2'], env);
      expect(none.code, none.stderr).toBe(19);
      expect(none.stderr).toMatch(/m5dev: error: no m5 exit or fail within 2 s/);
      // --new: only what comes after the call.
      expect((await exec('./m5op fail 8')).code).toBe(0);
      const future = await startWait(['--new']);
      expect((await exec('./m5op fail 6')).code).toBe(0);
      expect((await future.done).code).toBe(6);
    }, 600_000);

    it("m5 install --gem5: gem5's util/m5 (a stand-in tree of gem5's layout, whose default is the instruction) built for the instance's base and placed as gem5-resources' images have it; its exit and fail (gem5's order) reach m5ops wait as the guest user", async () => {
      const notTree = await cli(['m5', 'install', '--gem5', scratch, '--name', NAME], env);
      expect(notTree.code, notTree.stderr).toBe(2);
      expect(notTree.stderr).toContain(`${scratch} is not a gem5 tree: no util/m5/SConstruct`);
      const tree = join(ROOT, 'test', 'fixtures', 'gem5-tree');
      // --base-image of the commands that need a live instance: a base no registry serves (a loopback
      // port nothing answers) is exit 4 before anything reaches the guest, as for every other command.
      const base = '127.0.0.1:1/m5dev-test/absent:1';
      for (const args of [['module', 'load', '--src', join(ROOT, 'module')], ['module', 'test', '--src', join(ROOT, 'module')], ['m5', 'install', '--gem5', tree]]) {
        const other = await cli([...args, '--name', NAME, '--base-image', base], env);
        expect(other.code, `${args.join(' ')}: ${other.stderr}`).toBe(4);
        expect(other.stderr).toMatch(/^m5dev: error: Base image 127\.0\.0\.1:1\/m5dev-test\/absent:1 is not present and could not be pulled/m);
      }
      const res = await cli(['--json', 'm5', 'install', '--gem5', tree, '--name', NAME, '--jobs', '2'], env);
      expect(res.code, res.stderr).toBe(0);
      expect(JSON.parse(res.stdout)).toMatchObject({ addr: '0x10010000', treeDefault: ['inst'], installed: { m5: '/usr/local/bin/m5' } });
      const placed = await exec('stat -c "%a %U %n" /usr/local/bin/gem5-bridge /usr/local/lib/libm5.a /usr/local/include/gem5/m5ops.h /usr/local/include/gem5/asm/generic/m5ops.h; readlink /usr/local/bin/m5; m5 config');
      expect(placed.stdout.trim().split('\n')).toEqual([
        '4755 root /usr/local/bin/gem5-bridge',
        '644 root /usr/local/lib/libm5.a',
        '644 root /usr/local/include/gem5/m5ops.h',
        '644 root /usr/local/include/gem5/asm/generic/m5ops.h',
        '/usr/local/bin/gem5-bridge',
        'call type addr, M5OP_ADDR 0x10010000',
      ]);
      // gem5's habit, unchanged: `m5 exit`, then `m5 fail CODE` (gem5's argument order), by the guest user.
      for (const [op, code] of [['m5 exit', 0], ['m5 fail 4 0', 4]] as const) {
        const wait = await startWait(['--new']);
        expect((await exec(op)).code).toBe(0);
        const got = await wait.done;
        expect(got.code, got.stderr).toBe(code);
      }
      // A tree whose util/m5 does not build: exit 24 with SCons' (the compiler's) words.
      const broken = join(scratch, 'gem5-broken');
      cpSync(tree, broken, { recursive: true });
      appendFileSync(join(broken, 'util', 'm5', 'src', 'm5.c'), '\n#error m5dev test: this tree does not build\n');
      const failed = await cli(['m5', 'install', '--gem5', broken, '--name', NAME], env);
      expect(failed.code, failed.stderr).toBe(24);
      expect(failed.stderr).toMatch(/Building gem5's m5 failed \(exit \d+\)/);
      expect(failed.stderr).toContain('this tree does not build');
      // Unchanged sources: the build is a cache hit, installed again.
      const again = await cli(['--json', 'm5', 'install', '--gem5', tree, '--name', NAME], env);
      expect(again.code, again.stderr).toBe(0);
      expect(JSON.parse(again.stdout)).toMatchObject({ cached: true });
    }, 600_000);

    it('--m5ops-exit poweroff at another --m5ops-addr: the module loads for that base, the guest\'s fail ends the VM and m5ops wait returns its code (the next test\'s up starts it again)', async () => {
      expect((await cli(['down', '--name', NAME], env)).code).toBe(0);
      writeFileSync(join(scratch, 'job.sh'), 'echo job ran\n');
      const up = await cli(['up', '--name', NAME, '--kernel', kt.version, '--no-ram-file', '--ssh-port', String(port), '--boot-timeout', '600', '--m5ops-exit', 'poweroff', '--m5ops-stats', 'insns', '--m5ops-readfile', join(scratch, 'job.sh'), '--m5ops-addr', '0x10020000'], env);
      expect(up.code, up.stderr).toBe(0);
      expect((await cli(['module', 'load', '--name', NAME], env)).code).toBe(0);
      // The range is where it was asked for: the module maps it there (its parameter), and the ops are answered.
      const at = await exec('cat /sys/module/m5/parameters/gem5_bridge_baseaddr; ./m5op sum 1 2 3 4 5 6');
      expect(at.stdout.trim().split('\n'), at.stderr).toEqual(['268566528', '21']);
      expect(JSON.parse((await cli(['--json', 'status', '--name', NAME], env)).stdout)).toMatchObject({ m5ops: { addr: '0x10020000' } });
      // gem5's habit: the job comes in through readfile; its end goes out through m5 fail.
      const job = await exec('./m5op readfile | sh; ./m5op op 0x42 0 0 >/dev/null; (sleep 1; ./m5op op 0x41 0 0; ./m5op fail 3) >/dev/null 2>&1 &');
      expect(job.stdout).toBe('job ran\n');
      const res = await cli(['m5ops', 'wait', '--name', NAME, '--timeout', '300'], env);
      expect(res.code, res.stderr).toBe(3);
      const st = JSON.parse((await cli(['--json', 'status', '--name', NAME], env)).stdout) as { state: string; m5ops: { exit: string; lastExit: { code: number } } };
      expect(st).toMatchObject({ state: 'exited', m5ops: { exit: 'poweroff', lastExit: { code: 3 } } });
      // --m5ops-stats insns: the job's last dump counts the instructions the guest ran in its second.
      const dest = join(scratch, 'insns-out');
      expect((await cli(['m5ops', 'out', '--name', NAME, dest], env)).code).toBe(0);
      const last = parseStats(readFileSync(join(dest, 'stats.txt'), 'utf8')).at(-1) as { simInsts: number; hostInstRate: number };
      expect(last.simInsts).toBeGreaterThan(10_000); // a second of a mostly idle guest, a process started in it
      expect(last.hostInstRate).toBeGreaterThan(0);
      // Stopped now: m5out can be cleared, and with it the instance's quota.
      const cleared = await cli(['--json', 'm5ops', 'out', '--clear', '--name', NAME], env);
      expect(cleared.code, cleared.stderr).toBe(0);
      expect(JSON.parse(cleared.stdout)).toMatchObject({ cleared: true });
      expect(existsSync(join(home, 'instances', NAME, 'm5out'))).toBe(false);
    }, 1_200_000);
  });

  it("the seed's guest workflow: the tree shared from the host, built in the guest against /lib/modules/$(uname -r)/build, make install, modprobe", async () => {
    // The guest's compiler: Debian's arm64 gcc and make, handed in through a second share.
    const debs = execFileSync('bash', [join(ROOT, 'scripts', 'guest-cc-debs.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
    // The user's tree, owned like a Linux laptop user's files (uid 1000, the guest user's uid).
    // It outlives the test: the next tests go on with this guest (no reboot in between), shares and all.
    const work = mkdtempSync(join(tmpdir(), 'm5dev share '));
    seedWork = work;
    cpSync(join(ROOT, 'module'), work, { recursive: true });
    // A git checkout: its metadata is what the host's git runs (hooks, core.fsmonitor), so the guest sees it read-only.
    mkdirSync(join(work, '.git'));
    writeFileSync(join(work, '.git', 'config'), '[core]\n\tbare = false\n');
    execFileSync('chown', ['-R', '1000:1000', work]);
    {
      // The VM the poweroff test above ended (one boot less than a down and a boot of its own); run
      // alone, this test stops whatever runs first.
      const before = JSON.parse((await cli(['--json', 'status', '--name', NAME], env)).stdout) as { state: string };
      if (before.state !== 'exited') expect((await cli(['down', '--name', NAME], env)).code).toBe(0);
      // --no-ram-file: the mode the next test suspends in (the default RAM file is guest.test.ts's).
      // A third share on a file system that keeps no user extended attributes (as some hosts' are):
      // up finds that out before QEMU starts and exports it with mapped-file instead.
      const ram = mkdtempSync(join(tmpdir(), 'm5dev-ramfs-'));
      execFileSync('mount', ['-t', 'ramfs', 'ramfs', ram]);
      ramShare = ram; // mounted: afterAll unmounts it
      execFileSync('chown', ['1000:1000', ramShare]);
      const up = await cli(['--json', 'up', '--name', NAME, '--kernel', kt.version, '--no-ram-file', '--ssh-port', String(port), '--boot-timeout', '600', '--m5ops-addr', '0x10010000', '--share', `${work}:m5`, '--share', `${debs}:/opt/debs:ro`, '--share', `${ramShare}:/opt/ram`], env);
      expect(up.code, up.stderr).toBe(0);
      // Started again after its poweroff, with the default m5ops policy (continue) when none is asked for.
      expect(JSON.parse((await cli(['--json', 'status', '--name', NAME], env)).stdout).m5ops).toMatchObject({ exit: 'continue', addr: '0x10010000' });
      const upJson = JSON.parse(up.stdout) as { notes: string[] };
      expect(upJson).toMatchObject({ kernel: kt.version, shares: [{ host: work, guest: '/home/ubuntu/m5', readOnly: false }, { host: debs, guest: '/opt/debs', readOnly: true }, { host: ramShare, guest: '/opt/ram', readOnly: false }] });
      // The debs are read-only (no owner note: nobody writes there); the tree is the guest user's own.
      expect(upJson.notes.sort()).toEqual([
        expect.stringMatching(/^share \/opt\/ram: the file system of \S+ keeps no extended attributes, so QEMU keeps the guest's owners and modes in \.virtfs_metadata/),
      ]);
      // The line holds on it too: what guest root plants is a plain file of the invoking user on the host.
      await expectShareHoldsTheLine((c) => cli(['exec', '--name', NAME, '--', c], env), '/opt/ram', ramShare);
      // /lib/modules/V: modules_install's files, and build → a tree whose host programs run here (arm64).
      const tree = await cli(['exec', '--name', NAME, '--', 'm=/lib/modules/$(uname -r); readlink $m/build; ls $m/modules.dep $m/modules.builtin >/dev/null && echo deps; $m/build/scripts/basic/fixdep 2>&1 | head -1'], env);
      expect(tree.stdout.trim().split('\n')).toEqual([`/usr/src/linux-headers-${kt.version}`, 'deps', 'Usage: fixdep <depfile> <target> <cmdline>']);
      const cc = await cli(['exec', '--name', NAME, '--', INSTALL_DEBS], env);
      expect(cc.code, cc.stderr).toBe(0);
      // Exactly the seed's and gem5_bridge's steps, as the guest user, in the shared tree.
      const built = await cli(['exec', '--name', NAME, '--', 'cd ~/m5 && make && sudo make install && sudo modprobe m5 gem5_bridge_baseaddr=0x10010000 && make test && ./m5_test && /sbin/modinfo -F vermagic m5 && grep "^m5/m5.ko:" /lib/modules/$(uname -r)/modules.dep'], env);
      expect(built.code, `${built.stdout}\n${built.stderr}`).toBe(0);
      expect(built.stdout).toMatch(/^1\.\.6$/m);
      expect(built.stdout).not.toMatch(/^not ok/m);
      expect(built.stdout).toMatch(new RegExp(`^${kt.version.replace(/\./g, '\\.')} SMP mod_unload aarch64`, 'm'));
      // What the guest built is on the host as the invoking user's plain files; the guest sees its own owner.
      expect(statSync(join(work, 'm5.ko')).uid).toBe(process.getuid!());
      expect((await cli(['exec', '--name', NAME, '--', 'stat -c %u ~/m5/m5.ko'], env)).stdout).toBe('1000\n');
      // The host boundary: guest root's chown, setuid/setgid bits, device nodes and links stay in the share's xattrs.
      await expectShareHoldsTheLine((c) => cli(['exec', '--name', NAME, '--', c], env), '~/m5', work);
      // Host edits show in the guest at once; guest writes show on the host.
      writeFileSync(join(work, 'from host.txt'), 'edited on the host\n');
      const seen = await cli(['exec', '--name', NAME, '--', "cat '/home/ubuntu/m5/from host.txt'; echo written in the guest > ~/m5/from-guest.txt"], env);
      expect(seen.stdout).toBe('edited on the host\n');
      expect(readFileSync(join(work, 'from-guest.txt'), 'utf8')).toBe('written in the guest\n');
      // A shell inside the share keeps it mounted: suspend refuses, and the guest runs on with its shares.
      const busy = startCli(['exec', '--name', NAME, '--', 'cd ~/m5 && exec sleep 60'], env);
      let refused: CliResult;
      try {
        // Until the shell is in the share (its sleep runs there): the suspend below must meet it.
        const inShare = async () => (await cli(['exec', '--name', NAME, '--', 'for p in $(pgrep -x sleep); do readlink /proc/$p/cwd; done'], env)).stdout.includes('/home/ubuntu/m5');
        const deadline = Date.now() + 60_000;
        while (!(await inShare())) {
          if (Date.now() > deadline) throw new Error('the shell never entered the share');
          await new Promise((r) => setTimeout(r, 500));
        }
        refused = await cli(['suspend', '--name', NAME], env);
      } finally {
        // Whatever failed, no exec is left holding the share for the tests after this one.
        busy.child.kill();
        await busy.done;
        await cli(['exec', '--name', NAME, '--', 'sudo pkill -x sleep; true'], env);
      }
      expect(refused.code).toBe(13);
      expect(refused.stderr).toMatch(/a share is in use in the guest[\s\S]*\/home\/ubuntu\/m5/);
      expect((await cli(['exec', '--name', NAME, '--', 'mountpoint -q ~/m5 && mountpoint -q /opt/debs && echo mounted'], env)).stdout).toBe('mounted\n');
      // Suspend → (the host edits meanwhile) → up: the resumed guest has its shares again.
      expect((await cli(['suspend', '--name', NAME], env)).code).toBe(0);
      writeFileSync(join(work, 'while suspended.txt'), 'still shared\n');
      const resumed = await cli(['--json', 'up', '--name', NAME], env);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(JSON.parse(resumed.stdout)).toMatchObject({ resumed: true, kernel: kt.version });
      const after = await cli(['exec', '--name', NAME, '--', "cat '/home/ubuntu/m5/while suspended.txt'; grep -c '^m5 ' /proc/modules"], env);
      expect(after.stdout).toBe('still shared\n1\n');
      expect((await cli(['exec', '--name', NAME, '--', 'sudo rmmod m5'], env)).code).toBe(0);
      // Read-only means read-only, for guest root too: a :ro share, and a writable share's .git.
      const ro = await cli(['exec', '--name', NAME, '--', 'cat ~/m5/.git/config >/dev/null && echo readable; sudo sh -c "echo x >> /home/ubuntu/m5/.git/config" 2>&1; sudo touch /opt/debs/x 2>&1; true'], env);
      expect(ro.stdout).toMatch(/^readable\n.*Read-only file system\n.*Read-only file system\n$/);
      // Guest root takes its read-only view away and writes through the writable share: QEMU itself cannot.
      const bypass = await cli(['exec', '--name', NAME, '--', 'sudo umount /home/ubuntu/m5/.git && sudo sh -c "echo x >> /home/ubuntu/m5/.git/config" 2>&1; sudo mount -t 9p -o trans=virtio,version=9p2000.L,ro m5dev0git /home/ubuntu/m5/.git; mountpoint -q /home/ubuntu/m5/.git && echo remounted'], env);
      expect(bypass.stdout).toMatch(/Read-only file system\nremounted\n$/);
      expect(readFileSync(join(work, '.git', 'config'), 'utf8')).toBe('[core]\n\tbare = false\n');
      expect(existsSync(join(debs, 'x'))).toBe(false);
    }
    {
      // The host boundary: guest root writes a Kbuild into the shared tree; m5dev's next module
      // load builds that tree. Its $(shell) runs, but in a container of its own, as the invoking
      // user, with no capability, network or share; only plain files come back.
      const kbuild = [
        'obj-m := m5.o',
        '$(shell id -u > $(src)/m5dev-build-uid; grep CapEff /proc/self/status > $(src)/m5dev-build-caps; ls /sys/class/net > $(src)/m5dev-build-net; ls /shares > $(src)/m5dev-build-shares 2>&1; cp /bin/sh $(src)/rootsh; chmod 4755 $(src)/rootsh; cp /bin/sh /shares/0/rootsh; chmod 4755 /shares/0/rootsh)',
        '',
      ].join('\n');
      const planted = await cli(['exec', '--name', NAME, '--', `printf '%s' '${kbuild.replace(/'/g, "'\\''")}' | sudo tee /home/ubuntu/m5/Kbuild >/dev/null`], env);
      expect(planted.code, planted.stderr).toBe(0);
      const load = await cli(['--json', 'module', 'load', '--name', NAME, '--src', work], env);
      expect(load.code, load.stderr).toBe(0);
      const dir = (JSON.parse(load.stdout) as { dir: string }).dir;
      expect(readFileSync(join(dir, 'm5dev-build-uid'), 'utf8').trim()).toBe(String(process.getuid!()));
      expect(readFileSync(join(dir, 'm5dev-build-caps'), 'utf8')).toMatch(/^CapEff:\s+0000000000000000$/m);
      expect(readFileSync(join(dir, 'm5dev-build-net'), 'utf8').trim()).toBe('lo');
      expect(readFileSync(join(dir, 'm5dev-build-shares'), 'utf8')).toMatch(/No such file or directory/);
      // What came back is plain: the shell it copied has no setuid bit; nothing reached the share.
      expect(statSync(join(dir, 'rootsh')).mode & 0o7000).toBe(0);
      expect(existsSync(join(work, 'rootsh'))).toBe(false);
      const special = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => {
        const p = join(d, e.name);
        if (e.isDirectory()) return special(p);
        return statSync(p).mode & 0o6000 ? [p] : [];
      });
      expect(special(work)).toEqual([]);
      expect(special(dir)).toEqual([]);
      expect((await cli(['exec', '--name', NAME, '--', 'sudo rmmod m5 && sudo rm /home/ubuntu/m5/Kbuild'], env)).code).toBe(0);
    }
  }, 1_200_000);

  it('suspend/resume keeps the booted kernel and the loaded module; a damaged saved state boots afresh', async () => {
    expect((await cli(['module', 'load', '--name', NAME], env)).code).toBe(0);
    const sus = await cli(['--json', 'suspend', '--name', NAME], env);
    expect(sus.code, sus.stderr).toBe(0);
    // Up with --no-ram-file: all of RAM is in QEMU's saved stream; there is no saved RAM file.
    expect(JSON.parse(sus.stdout).bytes).toBeGreaterThan(50 * 2 ** 20);
    expect(statSync(join(home, 'instances', NAME, 'vmstate')).size).toBe(JSON.parse(sus.stdout).bytes);
    expect(existsSync(join(home, 'instances', NAME, 'ram'))).toBe(false);
    // No --kernel (nor --no-ram-file): a suspended instance resumes with the kernel and mode it was running.
    const resumed = await cli(['--json', 'up', '--name', NAME], env);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ resumed: true, kernel: kt.version });
    const live = await cli(['exec', '--name', NAME, '--', 'uname -r; grep -c "^m5 " /proc/modules'], env);
    expect(live.stdout.trim().split('\n')).toEqual([kt.version, '1']);
    expect((await cli(['suspend', '--name', NAME], env)).code).toBe(0);
    const state = join(home, 'instances', NAME, 'vmstate');
    const saved = readFileSync(state);
    writeFileSync(state, saved.subarray(0, saved.length >> 1)); // cut short: QEMU cannot load it
    const fresh = await cli(['--json', 'up', '--name', NAME, '--boot-timeout', '600'], env);
    expect(fresh.code, fresh.stderr).toBe(0);
    const out = JSON.parse(fresh.stdout) as { resumed: boolean; notes: string[]; kernel: string };
    expect(out).toMatchObject({ resumed: false, kernel: kt.version });
    expect(out.notes.join(' ')).toMatch(/could not resume \(qemu-system-aarch64: load of migration failed/);
    const booted = await cli(['exec', '--name', NAME, '--', 'uname -r; grep -c "^m5 " /proc/modules'], env);
    expect(booted.stdout.trim().split('\n')).toEqual([kt.version, '0']);
    expect(filesIn(join(home, 'instances', NAME)).filter((f) => f.startsWith('vmstate'))).toEqual([]);
  }, 900_000);

  it('refuses to load into a guest running another kernel', async () => {
    expect((await cli(['down', '--name', NAME], env)).code).toBe(0);
    // No --disk: an existing instance keeps the disk kind it was created with (overlay).
    // The fixture's own kernel (Debian's cloud kernel) has no 9p: a share fails clearly, the guest runs on.
    const up = await cli(['up', '--name', NAME, '--image-url', `${images.url}/${fx.image}`, '--ssh-port', String(port), '--boot-timeout', '600', '--share', ROOT], env);
    expect(up.code, up.stderr).toBe(18);
    expect(up.stderr).toMatch(/cannot mount the shares: the guest kernel \S+ has no 9p file system/);
    expect(up.stderr).not.toMatch(/\n\s+at /);
    // The guest answered before the share failed: it runs on, reachable, as the hint says.
    expect(up.stderr).toMatch(/The guest is up without the shares/);
    const still = await cli(['exec', '--name', NAME, '--', 'uname -r'], env);
    expect(still.code, still.stderr).toBe(0);
    expect(still.stdout.trim()).not.toBe(kt.version);
    expect((await cli(['up', '--name', NAME], env)).code).toBe(0); // the instance no longer asks for the share
    const implicit = await cli(['module', 'load', '--name', NAME], env);
    expect(implicit.code).toBe(2);
    expect(implicit.stderr).toMatch(/runs its image's own kernel/);
    const explicit = await cli(['module', 'load', '--name', NAME, '--kernel', kt.version], env);
    expect(explicit.code).toBe(12);
    expect(explicit.stderr).toMatch(new RegExp(`the guest runs \\S+, the module is built for ${kt.version.replace(/\./g, '\\.')}`));
    expect(existsSync(join(home, 'instances', NAME))).toBe(true);
  }, 900_000);
});
