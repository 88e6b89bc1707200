import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { MODULE_LOAD, loadCommand } from '../../src/workflows/module.js';
import { script } from '../../src/scripts.js';

/** The guest's side of `module load` (sh/guest/module-load.sh), run by this machine's sh up to where it would need root. */
const run = (release: string, input: string) => spawnSync('sh', ['-c', script('moduleLoad'), 'm5dev-module', release, 'a=1'], { input, encoding: 'utf8' });

describe('the module load script', () => {
  const here = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();

  it('is valid sh, sent under one sudo with the release and the parameters as its arguments', () => {
    expect(spawnSync('sh', ['-n', '-c', script('moduleLoad')]).status).toBe(0);
    const cmd = loadCommand('6.6.33', ['x=1', 'y=0x10']).line;
    expect(cmd.startsWith('sudo -n sh -c ')).toBe(true);
    expect(cmd.endsWith(' m5dev-moduleLoad 6.6.33 x=1 y=0x10')).toBe(true);
  });

  it('refuses another kernel before it reads its input, naming the running one', () => {
    const r = run('6.6.33-not-this', 'm5.ko:m5\n');
    expect(r.status).toBe(MODULE_LOAD.exit.wrongRelease);
    expect(r.stdout).toBe(`${MODULE_LOAD.releaseMark}${here}\n`);
  });

  it('stops cleanly when the build failed and no modules came', () => {
    const r = run(here, '');
    expect(r.status).toBe(MODULE_LOAD.exit.noInput);
    expect(r.stdout).toContain('no modules on stdin');
  });
});
