/**
 * The shipped scripts (sh/, src/scripts.ts): each parses (sh -n; the relay with Python's parser), and the copy pair runs
 * here, in a real sh with a real tar, as it runs in the guest (the guest's side of `m5dev cp`).
 */
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SCRIPTS, script } from '../../src/scripts.js';

const run = (name: keyof typeof SCRIPTS, args: string[], input?: Buffer) => spawnSync('sh', ['-c', script(name), `m5dev-${name}`, ...args], { input });

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
});
