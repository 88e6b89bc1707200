/**
 * GitHub Actions workflow commands: under GITHUB_ACTIONS=true, an m5dev error, a failed check of a
 * module test and a guest's failing m5 exit are also printed as `::error` annotations, which the
 * run's summary and the pull request show. Nothing anywhere else.
 */
import { randomBytes } from 'node:crypto';
import { session } from '../session.js';

/** Pure: a workflow command's property or message, escaped as the runner reads it. */
export function ghEscape(s: string, property = false): string {
  const t = s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
  return property ? t.replace(/:/g, '%3A').replace(/,/g, '%2C') : t;
}

/** Pure: one `::error` line. */
export function errorAnnotation(title: string, message: string): string {
  return `::error title=${ghEscape(title, true)}::${ghEscape(message)}\n`;
}

export function inGithubActions(env: Readonly<NodeJS.ProcessEnv> = session().env): boolean {
  return env.GITHUB_ACTIONS === 'true';
}

/**
 * Print an `::error` annotation under GitHub Actions: on stdout, where the runner reads workflow
 * commands, or on stderr when stdout carries a `--json` result (the runner reads both).
 */
export function annotateError(title: string, message: string, opts: { json?: boolean } = {}, env: Readonly<NodeJS.ProcessEnv> = session().env): void {
  if (inGithubActions(env)) (opts.json ? process.stderr : process.stdout).write(errorAnnotation(title, message));
}

/**
 * Guest output for the log under GitHub Actions: inside a stop-commands block (a token the guest
 * cannot guess), so a line the guest prints (`::add-mask::`, a forged `::error`) is text, not a
 * command to the runner. Elsewhere, the text as it is.
 */
export function guestBlock(text: string, env: Readonly<NodeJS.ProcessEnv> = session().env): string {
  if (!inGithubActions(env) || text === '') return text;
  const token = `m5dev-${randomBytes(12).toString('hex')}`;
  return `::stop-commands::${token}\n${text}${text.endsWith('\n') ? '' : '\n'}::${token}::\n`;
}

/** Guest output streamed as it comes: guestBlock's opening and closing lines around it (both '' outside GitHub Actions). */
export function guestStream(env: Readonly<NodeJS.ProcessEnv> = session().env): { open: string; close: string } {
  if (!inGithubActions(env)) return { open: '', close: '' };
  const token = `m5dev-${randomBytes(12).toString('hex')}`;
  return { open: `::stop-commands::${token}\n`, close: `::${token}::\n` };
}
