/** The toolchain lock, pure: read, write, apt's simulation, changes, and the build's failure lines. */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { debianArch, describeChange, describeDrift, diffPackages, formatLock, lockFailure, ownRepoDigest, isDriftLine, parseDrift, parseLock, parseSimulation, snapshotSources } from '../../src/docker/toolchain-lock.js';
import { spawnSync } from 'node:child_process';
import { contextHash } from '../../src/docker/build-context.js';
import { UsageError } from '../../src/errors.js';
import { ROOT } from '../helpers/cli.js';
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';

const SIMULATION = [
  'NOTE: This is only a simulation!',
  'Inst libc6 [2.36-9+deb12u7] (2.36-9+deb12u14 Debian:12.15/oldstable [amd64])',
  'Inst gcc-aarch64-linux-gnu (4:12.2.0-3 Debian:12.15/oldstable [amd64])',
  'Inst libc6-arm64-cross (2.36-8cross1 Debian:12.15/oldstable [all])',
  'Conf libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64])',
].join('\n');

describe('toolchain lock', () => {
  it('reads what apt would install, upgrades included, with versions and architectures', () => {
    expect([...parseSimulation(SIMULATION)]).toEqual([
      ['libc6:amd64', '2.36-9+deb12u14'],
      ['gcc-aarch64-linux-gnu:amd64', '4:12.2.0-3'],
      ['libc6-arm64-cross:all', '2.36-8cross1'],
    ]);
  });

  it('writes and reads back the same lock', () => {
    const lock = {
      snapshot: 'https://snapshot.debian.org/archive/debian/20261125T000000Z',
      bases: new Map([['amd64', { ref: 'debian:bookworm-slim', id: 'sha256:aa', repoDigest: 'sha256:bb' }]]),
      packages: new Map([['amd64', parseSimulation(SIMULATION)]]),
    };
    const text = formatLock(lock);
    expect(text).toContain('pkg amd64 gcc-aarch64-linux-gnu:amd64 4:12.2.0-3\n');
    expect(parseLock(text)).toEqual(lock);
    expect(formatLock(parseLock(text))).toBe(text);
  });

  it('refuses a line it cannot read, naming the line', () => {
    expect(() => parseLock('snapshot -\npkg amd64 gcc\n', 'x.lock')).toThrow(UsageError);
    expect(() => parseLock('pkg amd64 gcc\n', 'x.lock')).toThrow(/x.lock:1/);
  });

  it('the packaged lock pins both architectures, the cross gcc on amd64 and the native one on arm64', () => {
    const lock = parseLock(readFileSync(join(ROOT, 'docker', 'm5dev-tools', 'toolchain.lock'), 'utf8'));
    expect(lock.packages.get('amd64')?.has('gcc-aarch64-linux-gnu:amd64')).toBe(true);
    expect(lock.packages.get('arm64')?.has('gcc:arm64')).toBe(true);
    expect([...lock.bases.keys()].sort()).toEqual(['amd64', 'arm64']);
  });

  it('a changed lock is a changed toolchain tag', () => {
    const dir = mkdtempSync(join(tmpdir(), 'm5dev-ctx-'));
    cpSync(join(ROOT, 'docker'), dir, { recursive: true });
    const before = contextHash(dir, { BASE_IMAGE: 'b' });
    expect(contextHash(dir, { BASE_IMAGE: 'b' })).toBe(before);
    const path = join(dir, 'm5dev-tools', 'toolchain.lock');
    writeFileSync(path, readFileSync(path, 'utf8').replace(/^(pkg amd64 tini:amd64 )\S+$/m, '$10.19.0-1+b4'));
    expect(contextHash(dir, { BASE_IMAGE: 'b' })).not.toBe(before);
  });

  it('reads every line kind and its fields exactly; comments, blank lines and extra blanks are nothing; a bad line is named by number and text', () => {
    const text = ['# a comment', '', '  snapshot   -  ', 'base arm64 debian:bookworm-slim sha256:cc -', 'base amd64 debian:bookworm-slim sha256:aa sha256:bb', '\tpkg amd64 make:amd64 4.3-4.1', 'pkg amd64 tini:amd64 0.19.0-1', 'pkg arm64 gcc:arm64 4:12.2.0-3', ''].join('\n');
    const lock = parseLock(text);
    expect(lock).toEqual({
      snapshot: undefined,
      bases: new Map([['arm64', { ref: 'debian:bookworm-slim', id: 'sha256:cc', repoDigest: undefined }], ['amd64', { ref: 'debian:bookworm-slim', id: 'sha256:aa', repoDigest: 'sha256:bb' }]]),
      packages: new Map([['amd64', new Map([['make:amd64', '4.3-4.1'], ['tini:amd64', '0.19.0-1']])], ['arm64', new Map([['gcc:arm64', '4:12.2.0-3']])]]),
    });
    // Written back sorted, with "-" for what is absent, after the header.
    expect(formatLock(lock).split('\n').filter((l) => !l.startsWith('#'))).toEqual([
      'snapshot -', 'base amd64 debian:bookworm-slim sha256:aa sha256:bb', 'base arm64 debian:bookworm-slim sha256:cc -', 'pkg amd64 make:amd64 4.3-4.1', 'pkg amd64 tini:amd64 0.19.0-1', 'pkg arm64 gcc:arm64 4:12.2.0-3', '',
    ]);
    // Each kind by its name and its number of fields: a line of another name with the same count is no such line.
    for (const [bad, n] of [['snapshot', 1], ['snapshot a b', 1], ['pkg amd64', 1], ['base amd64 ref id', 1], ['pkg amd64 a:b 1 x', 1], ['src amd64 a:b 1', 1], ['pkg amd64 make 1', 1], ['pkg amd64 make:amd64', 1], ['# ok\nwhat is this', 2]] as const) {
      const err = (() => {
        try {
          parseLock(`${bad}\n`, 'x.lock');
        } catch (e) {
          return e as UsageError;
        }
        return undefined;
      })();
      expect(err?.message).toBe(`x.lock:${n}: cannot read "${bad.split('\n').pop()?.trim()}"`);
      expect(err?.hint).toBe('Rewrite the lock with `m5dev image lock`.');
    }
    expect(parseLock('snapshot https://s/x\n').snapshot).toBe('https://s/x');
    expect(() => parseLock('what\n')).toThrow(/^toolchain\.lock:1: /); // the packaged file's name by default
    // Sorted by name whatever the order read.
    const order = formatLock(parseLock('pkg amd64 c:all 1\npkg amd64 a:all 1\npkg amd64 b:all 1\n')).split('\n').filter((l) => l.startsWith('pkg'));
    expect(order).toEqual(['pkg amd64 a:all 1', 'pkg amd64 b:all 1', 'pkg amd64 c:all 1']);
  });

  it("reads apt's simulation lines only (an Inst line with an architecture), the package's own architecture suffix dropped", () => {
    expect([...parseSimulation('Inst libfoo:arm64 (1.0 Debian:12 [arm64])\nInst bar (2.0 Debian:12)\nConf baz (1 Debian [all])\n Inst indented (1 x [all])')]).toEqual([['libfoo:arm64', '1.0']]);
  });

  it('says what changed', () => {
    const changes = diffPackages(new Map([['a:all', '1'], ['b:all', '1']]), new Map([['b:all', '2'], ['c:all', '1']]));
    expect(changes.map(describeChange)).toEqual(['- a:all 1', '~ b:all 1 → 2', '+ c:all 1']);
    // Unchanged ones are not changes; names sorted; no lock before: everything is new.
    expect(diffPackages(new Map([['z:all', '1'], ['a:all', '1']]), new Map([['z:all', '1'], ['a:all', '2']]))).toEqual([{ name: 'a:all', from: '1', to: '2' }]);
    expect(diffPackages(undefined, new Map([['z:all', '1'], ['a:all', '2']])).map(describeChange)).toEqual(['+ a:all 2', '+ z:all 1']);
  });

  it('turns the build script\'s failure lines into a message naming the packages', () => {
    expect(lockFailure('Step 4/6\nm5dev-lock: not-served tini:amd64 0.0.1\nm5dev-lock: not-served make:amd64 1\n')?.message).toBe(
      'the toolchain lock pins tini:amd64 0.0.1, make:amd64 1, which the mirror no longer serves',
    );
    expect(lockFailure('m5dev-lock: no-arch riscv64')?.hint).toMatch(/m5dev image lock/);
    expect(lockFailure('m5dev-lock: missing gcc:amd64=1')?.message).toMatch(/lacks locked versions: gcc:amd64=1/);
    expect(lockFailure('m5dev-lock: unsatisfiable zlib1g-dev:amd64 1:1.2.13.dfsg-1\n')?.message).toBe(
      "the toolchain lock pins zlib1g-dev:amd64 1:1.2.13.dfsg-1, which no longer installs beside this base image's packages",
    );
    expect(lockFailure('m5dev-lock: unsatisfiable - -')?.message).toMatch(/no longer install together, even at the versions the mirror serves/);
    expect(lockFailure('all good')).toBeUndefined();
    // Many: the first five (six for missing) named, and how many more.
    const many = (kind: string, n: number) => Array.from({ length: n }, (_, i) => `m5dev-lock: ${kind} p${i}:amd64 1`).join('\n');
    expect(lockFailure(many('not-served', 7))?.message).toBe('the toolchain lock pins p0:amd64 1, p1:amd64 1, p2:amd64 1, p3:amd64 1, p4:amd64 1 and 2 more, which the mirror no longer serves');
    expect(lockFailure(many('not-served', 5))?.message).toBe('the toolchain lock pins p0:amd64 1, p1:amd64 1, p2:amd64 1, p3:amd64 1, p4:amd64 1, which the mirror no longer serves');
    expect(lockFailure(many('unsatisfiable', 6))?.message).toMatch(/p4:amd64 1 and 1 more, which no longer installs/);
    expect(lockFailure(many('missing', 8))?.message).toBe('after installing, the toolchain image lacks locked versions: p0:amd64 1, p1:amd64 1, p2:amd64 1, p3:amd64 1, p4:amd64 1, p5:amd64 1 and 2 more');
    expect(lockFailure(many('missing', 6))?.message).not.toMatch(/more/);
    // The kinds in order of what the user must do first: a missing architecture, then strictness, then apt.
    expect(lockFailure('m5dev-lock: not-served a:amd64 1\nm5dev-lock: no-arch riscv64')?.message).toBe('the toolchain lock has no packages for riscv64');
    expect(lockFailure('m5dev-lock: unsatisfiable b:amd64 2\nm5dev-lock: not-served a:amd64 1')?.message).toMatch(/^the toolchain lock pins a:amd64 1, which the mirror/);
    expect(lockFailure('m5dev-lock: missing c:amd64=3\nm5dev-lock: unsatisfiable b:amd64 2')?.message).toMatch(/^the toolchain lock pins b:amd64 2, which no longer installs/);
    expect(lockFailure('m5dev-lock: not-served a:amd64 1')?.hint).toMatch(/strict build/);
    expect(lockFailure('m5dev-lock: unsatisfiable b:amd64 2')?.hint).toMatch(/base image or the mirror moved on/);
    expect(lockFailure('m5dev-lock: missing c:amd64=3')?.hint).toMatch(/other versions than the one the lock was made on/);
    expect(debianArch('riscv64')).toBe('riscv64');
    expect(debianArch('x86_64')).toBe('amd64');
    expect(debianArch('aarch64')).toBe('arm64');
  });
});

describe('snapshot sources', () => {
  const script = readFileSync(join(ROOT, 'docker', 'm5dev-tools', 'm5dev-install-locked'), 'utf8');

  it("are read from the image build's install script, and write the archive and its security sibling", () => {
    const lines = snapshotSources(script);
    expect(lines[0]).toBe('rm -f /etc/apt/sources.list.d/*');
    // Run them on a real sh, with /etc/apt/sources.list pointed at a scratch file.
    const dir = mkdtempSync(join(tmpdir(), 'm5dev-sources-'));
    const body = lines.filter((l) => !l.startsWith('rm ')).join('\n').replaceAll('/etc/apt/sources.list', `${dir}/sources.list`);
    const r = spawnSync('sh', ['-ec', `snapshot='https://snapshot.debian.org/archive/debian/20240612T000000Z/'\n${body}`], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(readFileSync(join(dir, 'sources.list'), 'utf8').split('\n')).toEqual([
      'deb [check-valid-until=no] https://snapshot.debian.org/archive/debian/20240612T000000Z/ bookworm main',
      'deb [check-valid-until=no] https://snapshot.debian.org/archive/debian/20240612T000000Z/ bookworm-updates main',
      'deb [check-valid-until=no] https://snapshot.debian.org/archive/debian-security/20240612T000000Z/ bookworm-security main',
      '',
    ]);
  });

  it('fails loudly when the block is gone', () => {
    expect(() => snapshotSources('#!/bin/sh\napt-get update\n')).toThrow(/no snapshot block/);
  });
});

describe('lock drift and base digests', () => {
  it('reads drift lines from a build log (only the marked ones) and from the image record', () => {
    const log = 'Step 4/7 : RUN x\nm5dev-lock-drift: linux-libc-dev:amd64 6.1.192-2 6.1.192-3\nRemoving intermediate container abc\nfoo:bar 1 2 3\n';
    // The product's own filter: only marked lines (the last line of the log looks like one, unmarked).
    const marked = log.split('\n').filter(isDriftLine).join('\n');
    expect(parseDrift(marked)).toEqual([{ name: 'linux-libc-dev:amd64', locked: '6.1.192-2', served: '6.1.192-3' }]);
    expect(parseDrift('tini:amd64 0.0.1-gone 0.19.0-1\n\n')).toEqual([{ name: 'tini:amd64', locked: '0.0.1-gone', served: '0.19.0-1' }]);
    expect(parseDrift('')).toEqual([]);
    expect(log.split('\n').filter(isDriftLine)).toHaveLength(1);
    expect(isDriftLine(' m5dev-lock-drift: a:amd64 1 2')).toBe(false);
    // A package name always carries its architecture.
    expect(parseDrift('tini 1 2\nm5dev-lock-drift: zlib1g 1 2')).toEqual([]);
    expect(describeDrift(parseDrift('a:amd64 1 2\nb:all 3 4'))).toBe('a:amd64 1 → 2, b:all 3 → 4');
  });

  it('records only a digest of the base reference\'s own repository', () => {
    const hub = 'sha256:' + 'a'.repeat(64);
    const reg = 'sha256:' + 'b'.repeat(64);
    expect(ownRepoDigest('debian:bookworm-slim', [`127.0.0.1:5000/debian@${reg}`])).toBeUndefined();
    expect(ownRepoDigest('debian:bookworm-slim', [`127.0.0.1:5000/debian@${reg}`, `debian@${hub}`])).toBe(hub);
    expect(ownRepoDigest('docker.io/library/debian:bookworm-slim', [`debian@${hub}`])).toBe(hub);
    expect(ownRepoDigest('127.0.0.1:5000/debian:bookworm-slim', [`debian@${hub}`, `127.0.0.1:5000/debian@${reg}`])).toBe(reg);
    expect(ownRepoDigest('debian:bookworm-slim', undefined)).toBeUndefined();
  });
});
