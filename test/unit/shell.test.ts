import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { shScript, shellQuote } from '../../src/shell.js';
import { guestArgv, guestScript, userCommand } from '../../src/ssh/guest-command.js';

describe('shell command lines', () => {
  it('quotes only what needs it, and a quoted word survives a real sh', () => {
    expect(shellQuote('plain/path-1.0')).toBe('plain/path-1.0');
    const tricky = "a file's name $(x) \"q\"";
    expect(execFileSync('sh', ['-c', `printf %s ${shellQuote(tricky)}`], { encoding: 'utf8' })).toBe(tricky);
  });

  it('runs a script with $0 and its arguments, under one sudo when asked', () => {
    const line = shScript('printf "%s|%s|%s" "$0" "$1" "$2"', 'm5dev-x', ['one two', "it's"]);
    expect(execFileSync('sh', ['-c', line], { encoding: 'utf8' })).toBe("m5dev-x|one two|it's");
    expect(shScript('true', 'n', [], { root: true })).toBe('sudo -n sh -c true n');
  });

  it('guest commands: argv words arrive whole through the guest\'s shell; a script runs with its arguments; the user\'s line is parsed as ssh would', () => {
    const words = ['printf', '%s|', 'a b', "it's", '$(reboot)', ''];
    expect(execFileSync('sh', ['-c', guestArgv(words).line], { encoding: 'utf8' })).toBe("a b|it's|$(reboot)||");
    expect(guestArgv(['systemctl', 'poweroff'], { root: true }).line).toBe('sudo -n systemctl poweroff');
    const put = guestScript('putFile', ['/tmp/x y', '0644'], { root: true }).line;
    expect(put.startsWith('sudo -n sh -c ')).toBe(true);
    expect(put.endsWith(" m5dev-putFile '/tmp/x y' 0644")).toBe(true);
    expect(userCommand(['echo', 'a;', 'echo', 'b'])!.line).toBe('echo a; echo b');
    expect(userCommand(['echo', 'a;', 'echo', 'b'], 'ssh')!.line).toBe('echo a; echo b');
    expect(userCommand([])).toBeUndefined();
    // exec: two or more words are an argv, passed exactly; one word is a shell line.
    const sh = (words: string[]) => execFileSync('sh', ['-c', userCommand(words, 'exec')!.line], { encoding: 'utf8' });
    expect(sh(['sh', '-c', 'echo a; echo b'])).toBe('a\nb\n');
    expect(sh(['printf', '%s|', 'a b', '$(echo no)', ''])).toBe('a b|$(echo no)||');
    expect(sh(['echo one; echo two'])).toBe('one\ntwo\n');
  });
});
