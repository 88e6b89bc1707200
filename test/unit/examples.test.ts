/** `m5dev --help` and the README show the same commands, each with one example (issue: habits). */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildProgram } from '../../src/cli/program.js';
import { EXAMPLES, leafCommands } from '../../src/cli/examples.js';

const ROOT = resolve(import.meta.dirname, '../..');
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
/** The README's "Using it" code block. */
const usingIt = /## Using it\n\n```sh\n([\s\S]*?)\n```/.exec(readme)![1]!;
const commandPart = (example: string) => example.replace(/\s{2,}#.*$/, '').trim();
const leaves = leafCommands(buildProgram()).map(([path]) => path);

describe('examples', () => {
  it('every command has exactly one, and it runs that command', () => {
    expect(Object.keys(EXAMPLES).sort()).toEqual([...leaves].sort());
    for (const [path, example] of Object.entries(EXAMPLES)) expect(example).toContain(`m5dev ${path}`);
  });

  it('the README shows each of them', () => {
    const missing = Object.values(EXAMPLES).map(commandPart).filter((c) => !usingIt.includes(c));
    expect(missing).toEqual([]);
  });

  it('the README names no command m5dev does not have', () => {
    const top = new Set(leaves.map((p) => p.split(' ')[0]!));
    const named = [...usingIt.matchAll(/(?:^|[\s(;&|])m5dev (?:--?[\w-]+(?: [^\s-]\S*)? )*([a-z][\w-]*)/gm)].map((m) => m[1]!);
    expect(named.filter((w) => !top.has(w))).toEqual([]);
  });

  it('each command\'s --help ends with its example', () => {
    for (const path of ['up', 'image build', 'm5ops out', 'completion']) {
      const help = execFileSync(process.execPath, [join(ROOT, 'dist', 'cli', 'main.js'), ...path.split(' '), '--help'], { encoding: 'utf8' });
      expect(help.trimEnd().endsWith(`Example:\n  ${EXAMPLES[path]}`)).toBe(true);
    }
  });
});
