/**
 * `m5dev kernel build` end to end, with no guest (so `make test` runs it while the fixture image is
 * still being built): a kernel tarball served over loopback (Debian's linux-source in place of
 * kernel.org), refused when its checksum or release is wrong, cross-built in the toolchain
 * container with every option of m5dev's fragment, cached, and locked against a second build.
 * The kernel lands in the tests' shared kernel home, where kernel.test.ts and the others boot it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, ROOT, startCli, type CliResult } from '../helpers/cli.js';
import { withLock } from '../../src/locks.js';
import { serveDir, type FileServer } from '../helpers/http-server.js';
import { kernelBuildArgs, kernelTarball, kernelTestHome, type KernelTarball } from '../helpers/kernel.js';
import { containersOfHome, docker } from '../helpers/docker.js';
import { standinKernelTarball, standinRuns } from '../helpers/standin-kernel.js';

let kt: KernelTarball;
let mirror: FileServer;
let env: NodeJS.ProcessEnv;
let kernelUrl: string;

interface KernelJson {
  version: string;
  release: string;
  imagePath: string;
  imageSha256: string;
  reproducible: boolean | null;
}

beforeAll(async () => {
  kt = kernelTarball();
  mirror = await serveDir(kt.dir);
  kernelUrl = `${mirror.url}/${kt.file}`;
  env = { M5DEV_HOME: kernelTestHome() };
}, 1_800_000);

afterAll(async () => {
  await mirror?.close();
  if (kt) rmSync(kt.dir, { recursive: true, force: true });
});

const filesIn = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
const kernelArgs = (version: string, sha256 = kt.sha256) => kernelBuildArgs(kt, kernelUrl, { version, sha256 });

describe('m5dev kernel build', () => {
  it('refuses a tarball whose checksum is wrong and keeps nothing', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'm5dev-kernel-badsum-'));
    const res = await cli(kernelArgs(kt.version, 'e'.repeat(64)), { M5DEV_HOME: scratch });
    expect(res.code, res.stderr).toBe(6);
    expect(res.stderr).toMatch(/SHA-256 mismatch/);
    expect(filesIn(join(scratch, 'blobs', 'sha256'))).toEqual([]);
    expect(filesIn(join(scratch, 'tmp'))).toEqual([]);
    expect(await containersOfHome(scratch)).toEqual([]);
    rmSync(scratch, { recursive: true, force: true });
  }, 300_000);

  it('a tarball that does not extract is exit 11 with tar\'s words, and leaves no partial tree and no container', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'm5dev-kernel-junk-'));
    const junk = `junk-${process.pid}.tar.xz`;
    const bytes = Buffer.from(`not an xz archive ${Date.now()}\n`.repeat(64));
    writeFileSync(join(kt.dir, junk), bytes);
    const res = await cli(kernelBuildArgs(kt, `${mirror.url}/${junk}`, { version: '9.9.9', sha256: createHash('sha256').update(bytes).digest('hex') }), { M5DEV_HOME: scratch });
    expect(res.code, res.stderr).toBe(11);
    expect(res.stderr).toMatch(/Extracting the kernel source failed \(exit \d+\)/);
    expect(res.stderr).toMatch(/xz|format|compress/i); // tar's (xz's) own words in the output tail
    expect(await containersOfHome(scratch)).toEqual([]);
    expect(filesIn(join(scratch, 'kernels', 'src'))).toEqual([]); // neither a tree nor its .partial
    rmSync(join(kt.dir, junk), { force: true });
    rmSync(scratch, { recursive: true, force: true });
  }, 600_000);

  it('refuses a tarball of another release than the one asked for', async () => {
    const res = await cli(kernelArgs('6.6.33'), env);
    expect(res.code, res.stderr).toBe(11);
    expect(res.stderr).toContain(`the tarball is linux-${kt.version}, not linux-6.6.33`);
    expect(res.stderr).toMatch(/hint: A module must be built against the exact kernel/);
  }, 600_000);

  // The real compile runs on a cold machine only (below); this tree makes every step run on every
  // `make test`, in seconds: a fresh home, so nothing is cached.
  it('the stand-in kernel goes through every step on every run, as the user with no capability, network or share: configure, compile, record, guest tree; a cache hit; a new key for a new fragment; two builds at once take turns; --rebuild reproduces it', async () => {
    const st = standinKernelTarball(kt.dir);
    const args = (extra: string[] = []) => ['--json', ...kernelBuildArgs(st, `${mirror.url}/${st.file}`), '--jobs', '2', ...extra];
    const home = mkdtempSync(join(tmpdir(), 'm5dev-kernel-standin-'));
    try {
      const res = await cli(args(), { M5DEV_HOME: home });
      expect(res.code, res.stderr).toBe(0);
      for (const step of [/Configured: every fragment option is in \.config/, /Built 1\.2\.3 in \d+ s \(Image sha256/, /Guest module tree: \/lib\/modules\/1\.2\.3/]) expect(res.stderr).toMatch(step);
      const k = JSON.parse(res.stdout) as KernelJson & { build: string; key: string };
      expect(k.release).toBe(st.version);
      expect(createHash('sha256').update(readFileSync(k.imagePath)).digest('hex')).toBe(k.imageSha256);
      expect(readFileSync(k.imagePath).subarray(56, 60).toString('latin1')).toBe('ARM\x64');
      // How each make target ran, in its own words: as the user whose files these are (root under
      // rootless engines, where root is the user), with no capability, only loopback and no share.
      const rootless = ((await docker.info()) as { SecurityOptions?: string[] }).SecurityOptions?.some((o) => o.includes('rootless')) ?? false;
      const uid = rootless ? 0 : process.getuid!();
      const runs = standinRuns(readFileSync(join(home, 'kernels', k.build, 'm5dev-standin.log'), 'utf8'));
      expect(runs.map((r) => r.target).sort()).toEqual(['Image', 'allnoconfig', 'modules', 'modules_install']);
      for (const r of runs) expect(r).toEqual({ target: r.target, uid, capEff: '0000000000000000', net: ['lo'], shares: false });
      // What it wrote on this machine is the user's own (no chown after the fact).
      expect(statSync(join(home, 'kernels', k.build, '.config')).uid).toBe(process.getuid!());
      // A cache hit, then a new key for another fragment (a comment changes its digest).
      const again = await cli(args(), { M5DEV_HOME: home });
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toMatch(/cached: 1\.2\.3 built from these inputs/);
      const fragment = join(home, 'other.config');
      writeFileSync(fragment, `${readFileSync(join(ROOT, 'config', 'kernel', 'm5dev-virt.config'), 'utf8')}# another fragment\n`);
      const other = await cli(args(['--config', fragment]), { M5DEV_HOME: home });
      expect(other.code, other.stderr).toBe(0);
      expect(other.stderr).toMatch(/Built 1\.2\.3 in/);
      expect((JSON.parse(other.stdout) as { key: string }).key).not.toBe(k.key);
      // Two builds of one new key at once: one builds, the other waits for it and takes its result.
      writeFileSync(fragment, `${readFileSync(fragment, 'utf8')}# a third\n`);
      const both = await Promise.all([cli(args(['--config', fragment]), { M5DEV_HOME: home }), cli(args(['--config', fragment]), { M5DEV_HOME: home })]);
      for (const b of both) expect(b.code, b.stderr).toBe(0);
      expect(both.filter((b) => /Built 1\.2\.3 in/.test(b.stderr))).toHaveLength(1);
      expect(both.filter((b) => /cached: 1\.2\.3 built from these inputs/.test(b.stderr))).toHaveLength(1);
      expect(both.some((b) => /in use by another m5dev/.test(b.stderr))).toBe(true);
      const rebuilt = await cli(args(['--rebuild']), { M5DEV_HOME: home });
      expect(rebuilt.code, rebuilt.stderr).toBe(0);
      expect(rebuilt.stderr).toMatch(/Built 1\.2\.3 in/);
      expect(JSON.parse(rebuilt.stdout)).toMatchObject({ imageSha256: k.imageSha256, reproducible: true });
      expect(await containersOfHome(home)).toEqual([]);
    } finally {
      rmSync(home, { recursive: true, force: true });
      rmSync(join(kt.dir, st.file), { force: true });
    }
  }, 900_000);

  // The compile itself runs on a cold machine only (the shared kernel home keeps it: about 20
  // core-minutes); what is checked here holds for that build either way, and `make test-repro`
  // forces a second real build (--rebuild) and compares it bit for bit.
  it('the kernel of these inputs (cross-compiled now or by an earlier run) has every fragment option in .config; a second run is a cache hit', async () => {
    const res = await cli(['--json', ...kernelArgs(kt.version)], env);
    expect(res.code, res.stderr).toBe(0);
    // Either it compiled now or it found that build (and says which).
    expect(res.stderr).toMatch(/cached: .* built from these inputs|Built \S+ in \d+ s \(Image sha256/);
    const k = JSON.parse(res.stdout) as KernelJson;
    expect(k.release).toBe(kt.version);
    expect(createHash('sha256').update(readFileSync(k.imagePath)).digest('hex')).toBe(k.imageSha256);
    expect(readFileSync(k.imagePath).subarray(56, 60).toString('latin1')).toBe('ARM\x64'); // arm64 Image magic
    // Every option of the fragment is in the build's .config, as set there (the test reads it, not m5dev's word).
    const config = readFileSync(join(k.imagePath, '..', '..', '..', '..', '.config'), 'utf8').split('\n');
    const wanted = readFileSync(join(ROOT, 'config', 'kernel', 'm5dev-virt.config'), 'utf8').split('\n').filter((l) => /^CONFIG_\w+=/.test(l));
    expect(wanted.length).toBeGreaterThan(50);
    expect(wanted.filter((l) => !config.includes(l))).toEqual([]);
    const again = await cli(['--json', ...kernelArgs(kt.version)], env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/cached: .* built from these inputs/);
    expect((JSON.parse(again.stdout) as KernelJson).imageSha256).toBe(k.imageSha256);
  }, 3_600_000);

  it('a second identical build waits while the first holds the lock, then reuses its result', async () => {
    // The test holds the kernel cache's lock as a first build would, for as long as it needs (taking
    // it in its turn: another lane's `kernel build` of the shared home may hold it for a moment).
    let second: Promise<CliResult> | undefined;
    await withLock(env.M5DEV_HOME!, `kernel-${kt.sha256}`, { wait: true, what: 'the test' }, async () => {
      const run = startCli(['--json', ...kernelArgs(kt.version)], env);
      second = run.done;
      let err = '';
      run.child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
      const deadline = Date.now() + 60_000;
      while (!/is in use by another m5dev/.test(err)) {
        if (Date.now() > deadline) throw new Error(`the second build did not wait: ${err}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      await new Promise((r) => setTimeout(r, 1000)); // still waiting a second later
      expect(err).not.toMatch(/Build inputs/);
    });
    const res = await second!;
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(new RegExp(`the kernel cache of linux-${kt.version.replace(/\./g, '\\.')} is in use by another m5dev \\(pid ${process.pid},`));
    expect(res.stderr).toMatch(/cached: .* built from these inputs/);
  }, 600_000);

  it('module build cross-compiles m5 and its test against the built tree, nothing loaded; unchanged sources are a cache hit', async () => {
    // A copy of the module with a line of its own: a key no earlier run made, so this is a real
    // compile on every run (the shared kernel home keeps module builds from run to run).
    const src = mkdtempSync(join(tmpdir(), 'm5dev-module-src-'));
    cpSync(join(ROOT, 'module'), src, { recursive: true });
    appendFileSync(join(src, 'm5.c'), `\n/* m5dev test run ${process.pid}-${Date.now()} */\n`);
    const res = await cli(['--json', 'module', 'build', '--kernel', kt.version, '--src', src], env);
    expect(res.code, res.stderr).toBe(0);
    const b = JSON.parse(res.stdout) as { dir: string; modules: string[]; test?: string; vermagic: string; release: string; cached: boolean };
    expect(b).toMatchObject({ modules: ['m5.ko'], release: kt.version, cached: false });
    expect(b.vermagic.split(' ')[0]).toBe(kt.version);
    // The .ko itself says so (read here, not m5dev's word), and it is an arm64 ELF relocatable.
    const ko = readFileSync(join(b.dir, 'm5.ko'));
    expect(ko.includes(`vermagic=${kt.version} `)).toBe(true);
    expect([ko.subarray(0, 4).toString('latin1'), ko.readUInt16LE(16), ko.readUInt16LE(18)]).toEqual(['\x7fELF', 1, 183]); // ET_REL, EM_AARCH64
    expect(b.test && existsSync(join(b.dir, b.test))).toBe(true);
    const again = await cli(['--json', 'module', 'build', '--kernel', kt.version, '--src', src], env);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ cached: true, vermagic: b.vermagic, dir: b.dir });
    // The default users run (the packaged module, no --src): built or found, for this kernel.
    const packaged = await cli(['--json', 'module', 'build', '--kernel', kt.version], env);
    expect(packaged.code, packaged.stderr).toBe(0);
    expect(JSON.parse(packaged.stdout)).toMatchObject({ modules: ['m5.ko'], vermagic: b.vermagic });
    rmSync(src, { recursive: true, force: true });
  }, 900_000);

  it('module build failures are exit 12: a compile error (the compiler\'s words shown), a Makefile that builds no .ko, a .ko of another kernel', async () => {
    const src = mkdtempSync(join(tmpdir(), 'm5dev-module-bad-'));
    cpSync(join(ROOT, 'module'), src, { recursive: true });
    appendFileSync(join(src, 'm5.c'), `\nint m5dev_broken_${process.pid} = this_symbol_does_not_exist;\n`);
    const broken = await cli(['module', 'build', '--kernel', kt.version, '--src', src], env);
    expect(broken.code, broken.stderr).toBe(12);
    expect(broken.stderr).toMatch(/Building the module failed \(exit \d+\)/);
    expect(broken.stderr).toMatch(/this_symbol_does_not_exist/);
    expect(broken.stderr).toMatch(/hint: Fix the compile error above/);
    const empty = mkdtempSync(join(tmpdir(), 'm5dev-module-empty-'));
    writeFileSync(join(empty, 'Kbuild'), '# obj-m names nothing\n');
    const none = await cli(['module', 'build', '--kernel', kt.version, '--src', empty], env);
    expect(none.code, none.stderr).toBe(12);
    expect(none.stderr).toMatch(/the build produced no \.ko/);
    expect(none.stderr).toMatch(/hint: Check obj-m in the module Makefile/);
    // A module that says it was built for another kernel (as one built against a tree its Makefile
    // hard-codes would): refused before anything could load it, and nothing cached.
    const other = mkdtempSync(join(tmpdir(), 'm5dev-module-other-'));
    writeFileSync(join(other, 'Kbuild'), 'obj-m := other_m5dev.o\n');
    writeFileSync(join(other, 'other_m5dev.c'), ['#include <linux/module.h>', 'MODULE_INFO(vermagic, "0.0.1-elsewhere SMP mod_unload aarch64");', 'MODULE_LICENSE("GPL");', ''].join('\n'));
    const elsewhere = await cli(['module', 'build', '--kernel', kt.version, '--src', other], env);
    expect(elsewhere.code, elsewhere.stderr).toBe(12);
    expect(elsewhere.stderr).toContain(`other_m5dev.ko has vermagic "0.0.1-elsewhere SMP mod_unload aarch64", not kernel ${kt.version}`);
    expect(elsewhere.stderr).toMatch(/hint: The kernel would refuse it\. Check that the module does not set its own vermagic/);
    const again = await cli(['module', 'build', '--kernel', kt.version, '--src', other], env);
    expect(again.code, again.stderr).toBe(12); // not a cache hit of what was refused
    rmSync(src, { recursive: true, force: true });
    rmSync(empty, { recursive: true, force: true });
    rmSync(other, { recursive: true, force: true });
  }, 900_000);

  it('kernel build --config: a fragment whose symbol this release does not know is refused, naming it, before any compile', async () => {
    const fragment = join(mkdtempSync(join(tmpdir(), 'm5dev-fragment-')), 'bad.config');
    writeFileSync(fragment, `${readFileSync(join(ROOT, 'config', 'kernel', 'm5dev-virt.config'), 'utf8')}CONFIG_M5DEV_NO_SUCH_SYMBOL=y\n`);
    const res = await cli([...kernelArgs(kt.version), '--config', fragment, '--jobs', '1'], env);
    expect(res.code, res.stderr).toBe(11);
    expect(res.stderr).toMatch(/1 option\(s\) of .*bad.config did not survive into .config/);
    expect(res.stderr).toContain('CONFIG_M5DEV_NO_SUCH_SYMBOL: wanted y, got absent');
    expect(res.stderr).not.toMatch(/Built \S+ in \d+ s \(Image sha256/); // the compile step's title when it ran
    expect(res.stderr).not.toMatch(/\n\s+at /);
  }, 900_000);

  it('a --rebuild cut short keeps the finished build: Ctrl-C puts it back at once, and after kill -9 the next run does', async () => {
    // The finished build of these inputs (its tree, with the guest's module tree in it), copied into
    // a home of this test's own (the shared one's guests read theirs meanwhile), with no source
    // tree: the rebuild sets the build aside and then spends its first minute extracting; it is
    // stopped there.
    const shared = await cli(['--json', ...kernelArgs(kt.version)], env);
    expect(shared.code, shared.stderr).toBe(0);
    const real = JSON.parse(shared.stdout) as KernelJson & { build: string; key: string; image: string };
    const home = mkdtempSync(join(tmpdir(), 'm5dev-kernel-rebuild-'));
    const [build, aside] = [join(home, 'kernels', real.build), join(home, 'kernels', `${real.build}.previous`)];
    mkdirSync(join(build, '..'), { recursive: true });
    execFileSync('cp', ['-a', join(kernelTestHome(), 'kernels', real.build), build]);
    const record = readFileSync(join(build, 'm5dev-kernel.json'), 'utf8');
    try {
      for (const signal of ['SIGINT', 'SIGKILL'] as const) {
        const run = startCli([...kernelArgs(kt.version), '--rebuild'], { M5DEV_HOME: home });
        let err = '';
        run.child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
        const deadline = Date.now() + 300_000;
        while (!/Extract the source/.test(err) || !existsSync(aside)) {
          if (Date.now() > deadline) {
            run.child.kill('SIGINT');
            await run.done;
            throw new Error(`the rebuild never reached its extraction with the finished build set aside: ${err}`);
          }
          await new Promise((r) => setTimeout(r, 100));
        }
        expect(existsSync(join(build, 'm5dev-kernel.json'))).toBe(false); // set aside, not removed
        run.child.kill(signal);
        const res = await run.done;
        if (signal === 'SIGINT') {
          expect(res.code, res.stderr).toBe(130);
          expect(existsSync(aside)).toBe(false); // put back before m5dev exited
          expect(readFileSync(join(build, 'm5dev-kernel.json'), 'utf8')).toBe(record);
        } else {
          expect(existsSync(join(aside, 'm5dev-kernel.json'))).toBe(true); // nothing ran: still aside
        }
        // The next run finds the finished build as it was (a kill -9 left it aside: put back first).
        const next = await cli(['--json', ...kernelArgs(kt.version)], { M5DEV_HOME: home });
        expect(next.code, next.stderr).toBe(0);
        expect(next.stderr).toMatch(/cached: .* built from these inputs/);
        expect((JSON.parse(next.stdout) as KernelJson).imageSha256).toBe(real.imageSha256);
        expect(existsSync(aside)).toBe(false);
        expect(await containersOfHome(home)).toEqual([]);
      }
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  }, 900_000);

  // A full second build (about as long as the first): opt in with M5DEV_TEST_REPRO=1 (`make test-repro`).
  // One rebuild shows both sides: the record it replaces names another Image than the real one, so
  // m5dev must call the rebuild DIFFERENT (exit 11), while the new Image is bit-identical to the real one.
  it.runIf(process.env.M5DEV_TEST_REPRO === '1')('rebuilds bit-identically (reproducible Image); a rebuild that differs from its record is exit 11', async () => {
    const before = await cli(['--json', ...kernelArgs(kt.version)], env);
    expect(before.code, before.stderr).toBe(0);
    const real = JSON.parse(before.stdout) as KernelJson & { build: string };
    const recordFile = join(kernelTestHome(), 'kernels', real.build, 'm5dev-kernel.json');
    const record = JSON.parse(readFileSync(recordFile, 'utf8')) as { imageSha256: string };
    writeFileSync(recordFile, JSON.stringify({ ...record, imageSha256: '0'.repeat(64) }));
    const res = await cli(['--json', ...kernelArgs(kt.version), '--rebuild'], env);
    expect(res.code, res.stderr).toBe(11);
    const rebuilt = JSON.parse(res.stdout) as KernelJson;
    expect(rebuilt.reproducible).toBe(false);
    expect(rebuilt.imageSha256).toBe(real.imageSha256);
    const plain = JSON.parse(readFileSync(recordFile, 'utf8')) as { imageSha256: string };
    expect(plain.imageSha256).toBe(real.imageSha256); // the new record is the real one
  }, 3_600_000);
});

