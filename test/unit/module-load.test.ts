import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadScript } from '../../src/workflows/module.js';

/** The guest's side of `module load`, run by this machine's sh up to where it would need root. */
const run = (release: string, input: string) => spawnSync('sh', ['-c', loadScript(release, ['a=1'])], { input, encoding: 'utf8' });

describe('the module load script', () => {
  const here = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();

  it('is valid sh', () => {
    expect(spawnSync('sh', ['-n', '-c', loadScript('6.6.33', ['x=1', 'y=0x10'])]).status).toBe(0);
  });

  it('refuses another kernel before it reads its input, naming the running one', () => {
    const r = run('6.6.33-not-this', 'm5.ko:m5\n');
    expect(r.status).toBe(97);
    expect(r.stdout).toBe(`m5dev: the guest runs ${here}\n`);
  });

  it('stops cleanly when the build failed and no modules came', () => {
    const r = run(here, '');
    expect(r.status).toBe(98);
    expect(r.stdout).toContain('no modules on stdin');
  });
});
