/** The toolchain image and the build client against the real Docker engine. */
import { afterAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { parseLock } from '../../src/docker/toolchain-lock.js';
import { packContext } from '../../src/docker/build-context.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { buildImage, imageId, removeImage } from '../../src/docker/images.js';
import { ImageBuildError } from '../../src/errors.js';
import { docker, TEST_LABEL } from '../helpers/docker.js';
import { ROOT, cli } from '../helpers/cli.js';
import { startRegistry, stopRegistry } from '../helpers/engines.js';
import { DEFAULTS } from '../../src/config.js';

const tags: string[] = [];
afterAll(async () => {
  for (const t of tags) await removeImage(docker, t);
});

function context(dockerfile: string): string {
  const d = mkdtempSync(join(tmpdir(), 'm5dev-ctx-'));
  writeFileSync(join(d, 'Dockerfile'), dockerfile);
  writeFileSync(join(d, 'payload.txt'), 'hello from the context\n');
  return d;
}

describe('buildImage (real engine)', () => {
  it('builds a context and tags it', async () => {
    const tag = `m5dev-test/ok:${randomBytes(4).toString('hex')}`;
    tags.push(tag);
    const lines: string[] = [];
    const id = await buildImage(docker, {
      contextDir: context(`FROM ${DEFAULTS.baseImage}\nCOPY payload.txt /payload.txt\nRUN grep -q hello /payload.txt\n`),
      tag,
      buildArgs: {},
      labels: { [TEST_LABEL]: 'true' },
      onLine: (l) => lines.push(l),
    });
    expect(id).toMatch(/^sha256:/);
    expect(await imageId(docker, tag)).toBe(id);
    expect(lines.some((l) => l.includes('COPY payload.txt'))).toBe(true);
  }, 120_000);

  it('fails a build whose step fails, with the failing step in the log tail', async () => {
    const tag = `m5dev-test/bad:${randomBytes(4).toString('hex')}`;
    tags.push(tag);
    const err = await buildImage(docker, {
      contextDir: context(`FROM ${DEFAULTS.baseImage}\nRUN echo about-to-fail && exit 7\n`),
      tag,
      buildArgs: {},
      labels: { [TEST_LABEL]: 'true' },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageBuildError);
    const e = err as ImageBuildError;
    expect(e.message).toMatch(/returned a non-zero code: 7/);
    expect(e.details).toContain('about-to-fail');
    expect(e.exitCode).toBe(4);
    expect(await imageId(docker, tag)).toBeUndefined();
  }, 120_000);
});

describe('m5dev image build (packed CLI)', () => {
  // The real build of this context runs on a fresh machine (and in the lock tests below, for copies of it);
  // here it may already exist: what is tested is that the second call finds it and builds nothing.
  it('gets the toolchain image (built, or found), then finds it again without building', async () => {
    const home = mkdtempSync(join(tmpdir(), 'm5dev-home-'));
    const first = await cli(['--json', 'image', 'build'], { M5DEV_HOME: home });
    expect(first.code, first.stderr).toBe(0);
    const r1 = JSON.parse(first.stdout) as { tag: string; cached: boolean };
    expect(r1.tag).toMatch(/^m5dev\/toolchain:[0-9a-f]{16}$/);
    const second = await cli(['--json', 'image', 'build'], { M5DEV_HOME: home });
    expect(second.code, second.stderr).toBe(0);
    const r2 = JSON.parse(second.stdout) as { tag: string; cached: boolean };
    expect(r2).toMatchObject({ tag: r1.tag, cached: true });
    expect(second.stderr).toMatch(/SKIPPED: cached: m5dev\/toolchain/);
    expect(second.stderr).not.toMatch(/Step \d+\/\d+|#\d+ \[/); // no build output at all
    // The tools the later steps rely on are in the image.
    const probe = await docker.run(r1.tag, ['sh', '-c', 'qemu-system-aarch64 --version && command -v cloud-localds qemu-img ssh ssh-keygen tini aarch64-linux-gnu-gcc m5dev-flash && test -f /usr/share/qemu-efi-aarch64/QEMU_EFI.fd && test -f /usr/local/lib/m5dev/m5ops.so'], process.stderr, { Labels: { [TEST_LABEL]: 'true' }, HostConfig: { AutoRemove: true } });
    expect((probe as [{ StatusCode: number }])[0].StatusCode).toBe(0);
  }, 900_000);

  it('fails a broken context with exit code 4 and the log tail, no stack trace', async () => {
    const toolchainTags = async () => (await docker.listImages({ filters: { label: ['dev.m5dev.role=toolchain'] } })).flatMap((i) => i.RepoTags ?? []).sort();
    const before = await toolchainTags();
    const ctx = context(`FROM ${DEFAULTS.baseImage}\nRUN echo broken-step && false\n`);
    const res = await cli(['image', 'build', '--context', ctx], { M5DEV_HOME: mkdtempSync(join(tmpdir(), 'm5dev-home-')) });
    expect(res.code).toBe(4);
    expect(res.stderr).toContain('m5dev: error: Image build failed');
    expect(res.stderr).toContain('broken-step');
    expect(res.stderr).toContain('hint:');
    expect(res.stderr).not.toMatch(/\n\s+at .*\.js:\d+/);
    // The failed build leaves no tag: the engine's toolchain tags are the ones it had.
    expect(await toolchainTags()).toEqual(before);
  }, 120_000);
});

describe('the toolchain lock (real engine, Debian mirror)', () => {
  const lockPath = join(ROOT, 'docker', 'm5dev-tools', 'toolchain.lock');
  /** A copy of the packaged build context; with `tini`, its lock pins that version of tini. */
  const contextCopy = (tini?: string): { ctx: string; path: string } => {
    const ctx = mkdtempSync(join(tmpdir(), 'm5dev-ctx-'));
    cpSync(join(ROOT, 'docker'), ctx, { recursive: true });
    const path = join(ctx, 'm5dev-tools', 'toolchain.lock');
    if (tini) writeFileSync(path, readFileSync(path, 'utf8').replace(/^pkg amd64 tini:amd64 \S+$/m, `pkg amd64 tini:amd64 ${tini}`));
    return { ctx, path };
  };
  const dpkg = async (image: string): Promise<string[]> => {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    await docker.run(image, ['dpkg-query', '-W', '-f', '${Package}:${Architecture}=${Version}\\n'], [out, process.stderr], { Labels: { [TEST_LABEL]: 'true' }, HostConfig: { AutoRemove: true } });
    return Buffer.concat(chunks).toString().split(/\r?\n/).filter(Boolean).sort(); // run() gives a TTY: CRLF
  };

  let builtTag = '';
  let builtSet: string[] = [];
  it('the image holds every locked package at its version (or the served one it names as drift)', async () => {
    const built = await cli(['--json', 'image', 'build'], { M5DEV_HOME: mkdtempSync(join(tmpdir(), 'm5dev-home-')) });
    expect(built.code, built.stderr).toBe(0);
    const { tag, drift } = JSON.parse(built.stdout) as { tag: string; drift: { name: string; locked: string; served: string }[] };
    const lock = parseLock(readFileSync(lockPath, 'utf8'));
    const installed = await dpkg(tag);
    // Debian supersedes packages every week: what the mirror no longer serves is named, and the served version installed.
    const served = new Map(drift.map((d) => [d.name, d]));
    const locked = [...lock.packages.get('amd64')!].map(([n, v]) => {
      const d = served.get(n);
      if (d) expect(d.locked).toBe(v);
      return `${n}=${d ? d.served : v}`;
    });
    expect(locked.length).toBeGreaterThan(50);
    expect(locked.filter((p) => !installed.includes(p))).toEqual([]);
    [builtTag, builtSet] = [tag, installed];
  }, 900_000);

  // A second build from nothing (no layer cache, every stage again: about as long as the first), so
  // it runs with the other reproducibility checks: opt in with M5DEV_TEST_REPRO=1 (`make test-repro`).
  it.runIf(process.env.M5DEV_TEST_REPRO === '1')('a clean rebuild of the same lock holds the same package set, line by line', async () => {
    expect(builtTag, 'the test above built the image').not.toBe('');
    const again = `m5dev-test/toolchain-rebuild:${randomBytes(4).toString('hex')}`;
    tags.push(again);
    const stream = await docker.buildImage(await packContext(join(ROOT, 'docker')), { t: again, nocache: true, rm: true, forcerm: true, labels: { [TEST_LABEL]: 'true' } });
    await new Promise((resolve, reject) => docker.modem.followProgress(stream, (e: Error | null) => (e ? reject(e) : resolve(undefined))));
    expect(await dpkg(again)).toEqual(builtSet);
  }, 1_800_000);

  /** A context whose lock pins only tini, at a version the mirror never served, behind a snapshot archive that does not answer. */
  const driftedContext = (): string => {
    const { ctx, path } = contextCopy();
    const lock = readFileSync(path, 'utf8').split('\n').filter((l) => !l.startsWith('pkg ') || l.startsWith('pkg arm64 ')).join('\n');
    writeFileSync(path, `${lock.replace(/^snapshot .*$/m, 'snapshot http://127.0.0.1:9/archive/debian/20240612T000000Z')}pkg amd64 tini:amd64 0.0.1-gone\n`);
    toolchainStageOnly(ctx);
    return ctx;
  };
  /** Only the toolchain stage: the m5ops plugin's stage needs the QEMU a small lock leaves out. */
  const toolchainStageOnly = (ctx: string): void => {
    const dockerfile = join(ctx, 'Dockerfile');
    writeFileSync(dockerfile, readFileSync(dockerfile, 'utf8').split(/^FROM toolchain AS /m)[0]!);
  };
  /** A context whose package list is tini alone (on every architecture): `image lock` and the build take a minute, not several. */
  const tiniContext = (): { ctx: string; path: string } => {
    const c = contextCopy();
    writeFileSync(join(c.ctx, 'm5dev-tools', 'm5dev-toolchain-packages'), '#!/bin/sh\necho tini\n', { mode: 0o755 });
    toolchainStageOnly(c.ctx);
    return c;
  };

  it('by default, a locked version the mirror no longer serves is replaced by the served one and named (and a dead snapshot archive falls back to the mirror)', async () => {
    const ctx = driftedContext();
    const res = await cli(['--json', 'image', 'build', '--context', ctx], { M5DEV_HOME: mkdtempSync(join(tmpdir(), 'm5dev-home-')) });
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout) as { tag: string; strict: boolean; drift: { name: string; locked: string; served: string }[] };
    tags.push(out.tag);
    expect(out.strict).toBe(false);
    expect(out.drift).toEqual([{ name: 'tini:amd64', locked: '0.0.1-gone', served: expect.stringMatching(/^\d/) }]);
    expect(res.stderr).toContain(`m5dev: notice: ${out.tag} differs from the toolchain lock: tini:amd64 0.0.1-gone → ${out.drift[0]!.served}`);
    expect(await dpkg(out.tag)).toContain(`tini:amd64=${out.drift[0]!.served}`);
    // The same image again: a cache hit that still names its drift (read from the image's record).
    const again = await cli(['--json', 'image', 'build', '--context', ctx], { M5DEV_HOME: mkdtempSync(join(tmpdir(), 'm5dev-home-')) });
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ tag: out.tag, cached: true, drift: out.drift });
    // The tag gone but its layers kept (another run's leftovers): a rebuild the layer cache answers
    // prints no drift lines, and still names the drift (found by a run that met such a cache).
    await docker.getImage(out.tag).remove({ noprune: true });
    const fromCache = await cli(['--json', 'image', 'build', '--context', ctx], { M5DEV_HOME: mkdtempSync(join(tmpdir(), 'm5dev-home-')) });
    expect(fromCache.code, fromCache.stderr).toBe(0);
    expect(JSON.parse(fromCache.stdout)).toMatchObject({ tag: out.tag, cached: false, drift: out.drift });
  }, 600_000);

  it('--strict-lock (and M5DEV_STRICT_LOCK=1) fails the same lock with exit 4, naming the package, under its own tag', async () => {
    const ctx = driftedContext();
    for (const [args, env] of [[['image', 'build', '--strict-lock', '--context', ctx], {}], [['image', 'build', '--context', ctx], { M5DEV_STRICT_LOCK: '1' }]] as const) {
      const res = await cli([...args], { M5DEV_HOME: mkdtempSync(join(tmpdir(), 'm5dev-home-')), ...env });
      expect(res.code, res.stderr).toBe(4);
      expect(res.stderr).toMatch(/m5dev: error: Image build failed: the toolchain lock pins tini:amd64 0.0.1-gone, which the mirror no longer serves/);
      expect(res.stderr).toMatch(/hint: Debian mirrors drop superseded versions. This is a strict build/);
    }
  }, 600_000);

  /**
   * A base that moved on since the lock was made, without the mirror: a repository of the build's
   * own (file:, no network needed) serves m5dev-fake-dev 1 and 2, each needing m5dev-fake-lib of
   * its own version exactly, and the base already holds lib 2 (as a base bootstrapped after a
   * security update holds the new zlib1g). The lock pins dev 1: served, and no longer installable.
   */
  const movedBaseContext = (): string => {
    const { ctx, path } = contextCopy();
    const lock = readFileSync(path, 'utf8').split('\n').filter((l) => !l.startsWith('pkg ')).join('\n');
    writeFileSync(path, `${lock}pkg amd64 m5dev-fake-dev:all 1\npkg arm64 m5dev-fake-dev:all 1\n`);
    toolchainStageOnly(ctx);
    writeFileSync(join(ctx, 'm5dev-tools', 'm5dev-test-moved-base'), [
      'set -eu',
      'mkdir /repo',
      'mk() {',
      '  d="$(mktemp -d)"; mkdir "$d/DEBIAN"',
      '  printf "Package: %s\\nVersion: %s\\nArchitecture: all\\nMaintainer: m5dev tests <t@localhost>\\nDescription: a test package\\n" "$1" "$2" > "$d/DEBIAN/control"',
      '  [ -z "$3" ] || echo "Depends: $3" >> "$d/DEBIAN/control"',
      '  dpkg-deb -b "$d" "/repo/$1_$2_all.deb" >/dev/null',
      '}',
      'mk m5dev-fake-lib 1 ""; mk m5dev-fake-lib 2 ""',
      'mk m5dev-fake-dev 1 "m5dev-fake-lib (= 1)"; mk m5dev-fake-dev 2 "m5dev-fake-lib (= 2)"',
      'cd /repo',
      'for f in *.deb; do dpkg-deb -f "$f"; echo "Filename: ./$f"; echo "Size: $(stat -c %s "$f")"; echo "SHA256: $(sha256sum "$f" | cut -d" " -f1)"; echo; done > Packages',
      'rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*',
      'echo "deb [trusted=yes] file:/repo ./" > /etc/apt/sources.list',
      'apt-get update -qq',
      'apt-get install -y -qq m5dev-fake-lib=2 >/dev/null',
      '',
    ].join('\n'));
    const dockerfile = join(ctx, 'Dockerfile');
    writeFileSync(dockerfile, readFileSync(dockerfile, 'utf8').replace(/^ARG M5DEV_STRICT_LOCK=0$/m, 'RUN sh /usr/local/bin/m5dev-test-moved-base\nARG M5DEV_STRICT_LOCK=0'));
    return ctx;
  };

  it('a locked version still served that no longer installs beside the base\'s packages: the served one by default, named; exit 4 naming it with --strict-lock', async () => {
    const ctx = movedBaseContext();
    const res = await cli(['--json', 'image', 'build', '--context', ctx], { M5DEV_HOME: mkdtempSync(join(tmpdir(), 'm5dev-home-')) });
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout) as { tag: string; drift: unknown[] };
    tags.push(out.tag);
    expect(out.drift).toEqual([{ name: 'm5dev-fake-dev:all', locked: '1', served: '2' }]);
    expect(res.stderr).toContain(`m5dev: notice: ${out.tag} differs from the toolchain lock: m5dev-fake-dev:all 1 → 2`);
    expect(await dpkg(out.tag)).toEqual(expect.arrayContaining(['m5dev-fake-dev:all=2', 'm5dev-fake-lib:all=2']));
    const strict = await cli(['image', 'build', '--strict-lock', '--context', ctx], { M5DEV_HOME: mkdtempSync(join(tmpdir(), 'm5dev-home-')) });
    expect(strict.code, strict.stderr).toBe(4);
    expect(strict.stderr).toMatch(/m5dev: error: Image build failed: the toolchain lock pins m5dev-fake-dev:all 1, which no longer installs beside this base image's packages/);
    expect(strict.stderr).toMatch(/m5dev-fake-dev : Depends: m5dev-fake-lib \(= 1\)/);
  }, 600_000);

  it('`image lock --snapshot URL` refuses an archive that does not answer, and leaves the lock as it was', async () => {
    const { ctx, path } = contextCopy();
    const before = readFileSync(path, 'utf8');
    const res = await cli(['image', 'lock', '--context', ctx, '--snapshot', 'http://127.0.0.1:9/archive/debian/20240612T000000Z'], { M5DEV_HOME: mkdtempSync(join(tmpdir(), 'm5dev-home-')) });
    expect(res.code, res.stderr).toBe(4);
    expect(res.stderr).toMatch(/the snapshot archive http:\/\/127.0.0.1:9\/archive\/debian\/20240612T000000Z does not answer/);
    expect(readFileSync(path, 'utf8')).toBe(before);
  }, 300_000);

  it('a registry that cannot start says why: its exit code, how long it took, and its own words (here: the port is taken)', async () => {
    const { createServer } = await import('node:net');
    const taken = createServer(() => undefined);
    await new Promise<void>((ok) => taken.listen(0, '127.0.0.1', ok));
    const port = (taken.address() as { port: number }).port;
    const saved = process.env.M5DEV_TEST_REGISTRY;
    process.env.M5DEV_TEST_REGISTRY = `127.0.0.1:${port}`;
    try {
      // Another listener on the port is not the registry: the script must not take its answer for one.
      const err = await startRegistry(mkdtempSync(join(tmpdir(), 'm5dev-registry-'))).then(() => undefined, (e: unknown) => e as Error);
      expect(err?.message).toMatch(new RegExp(`registry\\.sh start .* ${port} exited 1 after \\d+ ms; its stderr:`));
      expect(err?.message).toMatch(/docker-registry exited; its log:[\s\S]*address already in use/);
    } finally {
      if (saved === undefined) delete process.env.M5DEV_TEST_REGISTRY;
      else process.env.M5DEV_TEST_REGISTRY = saved;
      taken.close();
    }
  });

  it('a base served by a registry is locked by its digest, then pulled and built by that digest', async () => {
    const regDir = mkdtempSync(join(tmpdir(), 'm5dev-registry-'));
    const registry = await startRegistry(regDir);
    try {
      const base = `${registry}/debian:bookworm-slim`;
      await docker.getImage(DEFAULTS.baseImage).tag({ repo: `${registry}/debian`, tag: 'bookworm-slim' });
      const pushed = await docker.getImage(base).push({ authconfig: {} });
      await new Promise((resolve, reject) => docker.modem.followProgress(pushed, (e: Error | null) => (e ? reject(e) : resolve(undefined))));
      // What is under test is the base's pin and pull, not the packages: a context of tini alone.
      const { ctx } = tiniContext();
      const env = { M5DEV_HOME: mkdtempSync(join(tmpdir(), 'm5dev-home-')) };
      // The plain base now also carries the registry's digest: not its own repository's, so the lock records none.
      const plain = tiniContext();
      const lockedPlain = await cli(['image', 'lock', '--context', plain.ctx], env);
      expect(lockedPlain.code, lockedPlain.stderr).toBe(0);
      expect(parseLock(readFileSync(plain.path, 'utf8')).bases.get('amd64')!.repoDigest).toBeUndefined();
      const locked = await cli(['image', 'lock', '--context', ctx, '--base-image', base], env);
      expect(locked.code, locked.stderr).toBe(0);
      const pin = parseLock(readFileSync(join(ctx, 'm5dev-tools', 'toolchain.lock'), 'utf8')).bases.get('amd64')!;
      expect(pin).toMatchObject({ ref: base, repoDigest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) });
      // The engine forgets the base: the build must pull it back, by the digest in the lock.
      await docker.getImage(base).remove({ force: true });
      await docker.getImage(`${registry}/debian@${pin.repoDigest}`).remove({ force: true }).catch(() => undefined);
      await expect(docker.getImage(`${registry}/debian@${pin.repoDigest}`).inspect()).rejects.toThrow();
      const built = await cli(['--json', 'image', 'build', '--context', ctx, '--base-image', base], env);
      expect(built.code, built.stderr).toBe(0);
      expect(built.stderr).toContain(`Base image ${registry}/debian@${pin.repoDigest}`);
      tags.push((JSON.parse(built.stdout) as { tag: string }).tag);
    } finally {
      stopRegistry(regDir);
      // This run's registry (its port) is gone: the base keeps no name or digest of it.
      const info = await docker.getImage(DEFAULTS.baseImage).inspect().catch(() => undefined);
      for (const ref of [...(info?.RepoTags ?? []), ...(info?.RepoDigests ?? [])].filter((r) => r.startsWith(`${registry}/`))) {
        await docker.getImage(ref).remove({ force: true }).catch(() => undefined);
      }
    }
  }, 900_000);

  it('`image lock` re-resolves on the engine and says what changed (nothing, against the lock it just wrote)', async () => {
    const { ctx, path } = contextCopy('0.0.1-old');
    const env = { M5DEV_HOME: mkdtempSync(join(tmpdir(), 'm5dev-home-')) };
    const first = await cli(['--json', 'image', 'lock', '--context', ctx], env);
    expect(first.code, first.stderr).toBe(0);
    const changes = (JSON.parse(first.stdout) as { changes: { name: string; from?: string }[] }).changes;
    expect(changes.find((c) => c.name === 'tini:amd64')).toMatchObject({ from: '0.0.1-old' });
    const second = await cli(['image', 'lock', '--context', ctx], env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/unchanged for amd64/);
    // The other architecture's section is kept as it was.
    expect(parseLock(readFileSync(path, 'utf8')).packages.get('arm64')).toEqual(parseLock(readFileSync(lockPath, 'utf8')).packages.get('arm64'));
  }, 300_000);
});

describe('Docker not reachable', () => {
  it('exits 3 with a hint, for any command that needs the engine', async () => {
    const env = { DOCKER_HOST: 'unix:///nonexistent/docker.sock', M5DEV_HOME: mkdtempSync(join(tmpdir(), 'm5dev-home-')) };
    for (const args of [['image', 'build'], ['status']]) {
      const res = await cli(args, env);
      expect(res.code, res.stderr).toBe(3);
      expect(res.stderr).toMatch(/Cannot reach the Docker engine/);
      expect(res.stderr).toMatch(/hint: Start Docker/);
    }
  });
});

describe('usage errors', () => {
  it('exit 2 for an unknown command or a bad flag value', async () => {
    expect((await cli(['frobnicate'])).code).toBe(2);
    const bad = await cli(['up', '--ssh-port', '99999'], { M5DEV_HOME: mkdtempSync(join(tmpdir(), 'm5dev-home-')) });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/sshPort" must be an integer from 1 to 65535/);
  });
});
