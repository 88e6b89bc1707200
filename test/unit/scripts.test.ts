/**
 * The shipped scripts (sh/, src/scripts.ts): each parses (sh -n; the relay with Python's parser), and the copy pair runs
 * here, in a real sh with a real tar, as it runs in the guest (the guest's side of `m5dev cp`).
 */
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SCRIPTS, script, scriptCommand } from '../../src/scripts.js';

/** As m5dev runs each: a guest script through the guest's shell (`sh -c`, GuestCommand), the others as `sh -ec` (scriptCommand). */
const run = (name: keyof typeof SCRIPTS, args: string[], input?: Buffer, env?: NodeJS.ProcessEnv) => {
  const [cmd, ...argv] = SCRIPTS[name].startsWith('guest/') ? ['sh', '-c', script(name), `m5dev-${name}`, ...args] : scriptCommand(name, args);
  return spawnSync(cmd!, argv, { input, env: env ?? process.env });
};

describe('shipped shell scripts', () => {
  it('every one exists, starts with its header (arguments, exit codes) and parses', () => {
    for (const name of Object.keys(SCRIPTS) as (keyof typeof SCRIPTS)[]) {
      const text = script(name);
      expect(text, name).toMatch(/Exit codes/);
      if (SCRIPTS[name].endsWith('.py')) {
        expect(spawnSync('python3', ['-c', 'import ast, sys; ast.parse(sys.stdin.read())'], { input: text }).status, name).toBe(0);
        continue;
      }
      expect(text.startsWith('#!/bin/sh\n'), name).toBe(true);
      expect(spawnSync('sh', ['-n', '-c', text]).status, name).toBe(0);
    }
  });

  it('cp-pack and cp-unpack: a tree with spaces round-trips under another name; into a directory it merges; a file never replaces a directory', () => {
    const base = mkdtempSync(join(tmpdir(), 'm5dev-cp-sh-'));
    mkdirSync(join(base, 'src', 'tree', 'sub dir'), { recursive: true });
    writeFileSync(join(base, 'src', 'tree', 'a file.txt'), 'spaces ok\n');
    writeFileSync(join(base, 'src', 'tree', 'sub dir', 'b.bin'), Buffer.from([0, 1, 2, 255]));
    const packed = run('cpPack', [join(base, 'src', 'tree')]);
    expect(packed.status, packed.stderr.toString()).toBe(0);
    // What the host side does with the stream: the top entry renamed to ENTRY (tar-fs's map in copy.ts).
    const staged = join(base, 'staged');
    mkdirSync(staged);
    execFileSync('tar', ['-x', '-C', staged], { input: packed.stdout });
    execFileSync('mv', [join(staged, 'tree'), join(staged, 'm5dev-cp')]);
    const stream = execFileSync('tar', ['-c', '-C', staged, 'm5dev-cp']);
    // To a new name.
    const fresh = run('cpUnpack', [join(base, 'dest', 'renamed'), 'tree', 'm5dev-cp'], stream);
    expect(fresh.status, fresh.stderr.toString()).toBe(0);
    expect(fresh.stderr.toString().trim()).toBe(join(base, 'dest', 'renamed'));
    expect(readFileSync(join(base, 'dest', 'renamed', 'a file.txt'), 'utf8')).toBe('spaces ok\n');
    expect(readFileSync(join(base, 'dest', 'renamed', 'sub dir', 'b.bin')).equals(Buffer.from([0, 1, 2, 255]))).toBe(true);
    // Into an existing directory: under its own name, merged with what is there; no staging left.
    mkdirSync(join(base, 'into', 'tree'), { recursive: true });
    writeFileSync(join(base, 'into', 'tree', 'kept.txt'), 'kept\n');
    const merged = run('cpUnpack', [join(base, 'into'), 'tree', 'm5dev-cp'], stream);
    expect(merged.status, merged.stderr.toString()).toBe(0);
    expect(readdirSync(join(base, 'into', 'tree')).sort()).toEqual(['a file.txt', 'kept.txt', 'sub dir']);
    expect(readdirSync(join(base, 'into'))).toEqual(['tree']);
    // A missing source: exit 1, named.
    const missing = run('cpPack', [join(base, 'nope')]);
    expect([missing.status, missing.stderr.toString().trim()]).toEqual([1, `no such file or directory: ${join(base, 'nope')}`]);
    // A file over a directory: refused, the directory as it was.
    const file = execFileSync('sh', ['-c', `cd ${JSON.stringify(staged)} && rm -rf m5dev-cp && echo f > m5dev-cp && tar -c m5dev-cp`]);
    const over = run('cpUnpack', [join(base, 'into', 'tree'), 'x', 'm5dev-cp'], file);
    expect(over.status).toBe(0); // into the directory, as x
    expect(existsSync(join(base, 'into', 'tree', 'x'))).toBe(true);
    const refused = run('cpUnpack', [join(base, 'into'), 'tree', 'm5dev-cp'], file);
    expect(refused.status).toBe(1);
    expect(refused.stderr.toString()).toMatch(/cannot overwrite directory .*tree with a file/);
  });

  it('volume.sh: every operation on names with spaces and quotes; a copy whose digest differs is removed, never renamed (exit 3)', () => {
    const root = mkdtempSync(join(tmpdir(), 'm5dev-volume-sh-'));
    const odd = `it's a "file"`;
    writeFileSync(join(root, odd), 'hello volume\n');
    const v = (op: string, ...args: string[]) => run('volume', [root, op, ...args]);
    const stat = v('stat', odd, 'absent');
    expect(stat.status).toBe(0);
    expect(stat.stdout.toString().trim().split('|').slice(0, 2)).toEqual([odd, '13']);
    expect(v('tail', '6', odd).stdout.toString()).toBe('olume\n');
    expect([v('tail', '6', 'absent').status, v('tail', '6', 'absent').stdout.length]).toEqual([0, 0]);
    const sha = execFileSync('sha256sum', [join(root, odd)]).toString().split(' ')[0]!;
    expect(v('sha256', odd).stdout.toString().trim()).toBe(sha);
    writeFileSync(join(root, 'incoming'), 'other bytes\n');
    const bad = v('verify-move', 'incoming', 'final', sha);
    expect([bad.status, bad.stderr.toString().trim()]).toEqual([3, 'digest mismatch after the copy']);
    expect([existsSync(join(root, 'incoming')), existsSync(join(root, 'final'))]).toEqual([false, false]);
    execFileSync('cp', [join(root, odd), join(root, 'incoming')]);
    expect(v('verify-move', 'incoming', 'final', sha).status).toBe(0);
    expect(readFileSync(join(root, 'final'), 'utf8')).toBe('hello volume\n');
    expect(v('stage', 'tree dir').status).toBe(0);
    mkdirSync(join(root, 'tree dir', 'sub'));
    writeFileSync(join(root, 'tree dir', 'sub', 'x y'), 'abc');
    expect(v('replace', 'tree dir', 'tree').status).toBe(0);
    expect(v('list', 'tree').stdout.toString()).toBe('3|sub/x y\n');
    expect(v('list', 'absent').stdout.length).toBe(0);
    expect(v('sync-rename', 'final', 'renamed', odd, 'second').status).toBe(0);
    expect(readdirSync(root).sort()).toEqual(['renamed', 'second', 'tree']);
    expect(v('rm', 'renamed', 'absent').status).toBe(0);
    expect(v('rm-tree', 'tree').status).toBe(0);
    expect(readdirSync(root)).toEqual(['second']);
    expect(v('df').stdout.toString().trim().split(/\s+/).length).toBe(6);
    expect(v('nonsense').status).toBe(2);
  });

  it('stdin-from.sh keeps the exit code and removes the file; put-file.sh renames a whole file into place', () => {
    const base = mkdtempSync(join(tmpdir(), 'm5dev-sh-'));
    writeFileSync(join(base, 'in'), 'fed\n');
    const fed = run('stdinFrom', [join(base, 'in'), 'sh', '-c', 'cat; exit 5']);
    expect([fed.status, fed.stdout.toString(), existsSync(join(base, 'in'))]).toEqual([5, 'fed\n', false]);
    const put = run('putFile', [join(base, 'dest file'), '0750'], Buffer.from('bytes'));
    expect(put.status).toBe(0);
    expect(readFileSync(join(base, 'dest file'), 'utf8')).toBe('bytes');
    expect((execFileSync('stat', ['-c', '%a', join(base, 'dest file')]).toString().trim())).toBe('750');
    expect(existsSync(join(base, 'dest file.part'))).toBe(false);
  });

  it('module-build.sh and kernel-make.sh keep make\'s exit code and merge its output; a test program that does not compile waits for make', () => {
    const base = mkdtempSync(join(tmpdir(), 'm5dev-make-sh-'));
    // A cross compiler that fails (this machine has none), and a make that takes a while.
    mkdirSync(join(base, 'bin'));
    writeFileSync(join(base, 'bin', 'aarch64-linux-gnu-gcc'), '#!/bin/sh\necho "m5_test.c: error: broken" >&2\nexit 1\n', { mode: 0o755 });
    const env = { ...process.env, PATH: `${join(base, 'bin')}:${process.env.PATH}` };
    const slowMake = ['sh', '-c', 'sleep 0.3; echo make-done'];
    const testFails = run('moduleBuild', [base, 'test/m5_test.c', 'm5-test', ...slowMake], undefined, env);
    expect([testFails.status, testFails.stdout.toString()]).toEqual([1, 'm5_test.c: error: broken\nmake-done\n']);
    const bothFail = run('moduleBuild', [base, 'test/m5_test.c', 'm5-test', 'sh', '-c', 'sleep 0.3; echo make-failed; exit 2'], undefined, env);
    expect([bothFail.status, bothFail.stdout.toString()]).toEqual([2, 'm5_test.c: error: broken\nmake-failed\n']);
    const built = run('moduleBuild', [base, '', 'm5-test', 'sh', '-c', 'pwd; echo to-stderr >&2; exit 4']);
    expect(built.status).toBe(4);
    expect(built.stdout.toString()).toBe(`${base}\nto-stderr\n`);
    const made = run('kernelMake', [join(base, 'out', 'dir'), 'sh', '-c', 'exit 0']);
    expect([made.status, existsSync(join(base, 'out', 'dir'))]).toEqual([0, true]);
  });

  it('no shell script is written in a TypeScript template string: sh -c / sh -ec take a shipped script', () => {
    const files = execFileSync('find', ['src', '-name', '*.ts']).toString().trim().split('\n');
    const offenders = files.flatMap((f) =>
      readFileSync(f, 'utf8')
        .split('\n')
        .map((line, i) => ({ where: `${f}:${i + 1}`, line }))
        .filter(({ line }) => /'sh', '-e?c', `/.test(line) || /\[`[^`]*(&&|\|\||; )[^`]*`\]/.test(line)),
    );
    expect(offenders.map((o) => o.where)).toEqual([]);
  });
});
