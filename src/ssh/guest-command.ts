/**
 * What runs in the guest over SSH. ssh hands the guest's shell one command line; every line m5dev
 * sends is made here, so each word is quoted exactly once and nothing else builds shell text:
 * a program and its arguments, a shipped guest script (sh/guest/) with its arguments, or the
 * user's own command line (`m5dev exec`, `m5dev ssh CMD`), which the guest's shell parses as ssh would.
 */
import { SCRIPTS, script } from '../scripts.js';
import { shScript, shellQuote } from '../shell.js';

declare const guestLine: unique symbol;
/** One remote shell line, made only by the functions below. */
export interface GuestCommand {
  readonly line: string;
  readonly [guestLine]: true;
}

const command = (line: string) => ({ line }) as GuestCommand;

/** A program and its arguments, each word quoted; as root under one non-interactive sudo when asked. */
export function guestArgv(words: string[], opts: { root?: boolean } = {}): GuestCommand {
  return command([...(opts.root ? ['sudo', '-n'] : []), ...words].map(shellQuote).join(' '));
}

type GuestScript = { [K in keyof typeof SCRIPTS]: (typeof SCRIPTS)[K] extends `guest/${string}` ? K : never }[keyof typeof SCRIPTS];

/** A shipped guest script with its arguments ($0 is `m5dev-NAME`); as root under one sudo when asked. */
export function guestScript(name: GuestScript, args: string[], opts: { root?: boolean } = {}): GuestCommand {
  return command(shScript(script(name), `m5dev-${name}`, args, opts));
}

/**
 * The user's words. `ssh`: joined as ssh joins them, so the guest's shell parses the line.
 * `exec`: as docker exec, kubectl exec and limactl shell do: two or more words are an argv, each
 * passed exactly (`m5dev exec -- sh -c 'a; b'`); a single word is a shell command line
 * (`m5dev exec -- 'cd /tmp && ls'`).
 */
export function userCommand(words: string[], style: 'ssh' | 'exec' = 'ssh'): GuestCommand | undefined {
  if (!words.length) return undefined;
  return style === 'exec' && words.length > 1 ? guestArgv(words) : command(words.join(' '));
}
