/** Quote a word for a POSIX shell (sh -c lines run in containers and in the guest). */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * A remote command line running `script` with `sh -c`, `$0` = `name` and `args` as $1…; as root
 * under a single non-interactive sudo when asked (one sudo per script: each costs a TCG guest ~0.3 s).
 */
export function shScript(script: string, name: string, args: string[] = [], opts: { root?: boolean } = {}): string {
  return [...(opts.root ? ['sudo', '-n'] : []), 'sh', '-c', shellQuote(script), name, ...args.map(shellQuote)].join(' ');
}
