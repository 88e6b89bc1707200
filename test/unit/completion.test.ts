/** `m5dev completion`: the scripts load in their shells and complete commands, flags and instance names. */
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from '../helpers/cli.js';

const script = (shell: string) => execFileSync(process.execPath, [CLI, 'completion', shell], { encoding: 'utf8' });

/** What bash offers for the words typed so far (the last one is being completed). */
function bashComplete(words: string[], home: string): string[] {
  const line = `${script('bash')}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _m5dev; printf '%s\\n' "\${COMPREPLY[@]}"`;
  return spawnSync('bash', ['-c', line], { encoding: 'utf8', env: { ...process.env, M5DEV_HOME: home } }).stdout.split('\n').filter(Boolean);
}

describe('m5dev completion', () => {
  const home = mkdtempSync(join(tmpdir(), 'm5dev-completion-'));
  for (const n of ['default', 'kmod']) mkdirSync(join(home, 'instances', n), { recursive: true });

  it('bash: registers m5dev, completes commands, subcommands, flags and instance names', () => {
    expect(spawnSync('bash', ['-c', `${script('bash')}\ncomplete -p m5dev`], { encoding: 'utf8' }).stdout.trim()).toBe('complete -F _m5dev m5dev');
    expect(bashComplete(['m5dev', 'm5o'], home)).toEqual(['m5ops']);
    expect(bashComplete(['m5dev', 'm5ops', ''], home).sort()).toEqual(['--help', 'log', 'out', 'readfile', 'wait']);
    expect(bashComplete(['m5dev', 'up', '--m5ops-e'], home)).toEqual(['--m5ops-exit']);
    expect(bashComplete(['m5dev', 'exec', '--name', ''], home).sort()).toEqual(['default', 'kmod']);
    expect(bashComplete(['m5dev', 'cp', 'km'], home)).toContain('kmod:');
  });

  it('zsh and fish scripts: zsh through bashcompinit, fish with the same tree; an unknown shell is a usage error', () => {
    expect(script('zsh')).toMatch(/^#compdef m5dev\nautoload -U \+X bashcompinit|bashcompinit/);
    const fish = script('fish');
    expect(fish).toContain("complete -c m5dev -n '__fish_seen_subcommand_from m5ops' -a wait");
    expect(fish).toContain("complete -c m5dev -n '__fish_seen_subcommand_from up' -l name -r -a '(__m5dev_instances)'");
    const bad = spawnSync(process.execPath, [CLI, 'completion', 'tcsh'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/no completion for shell "tcsh"/);
  });
});
