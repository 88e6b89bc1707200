/**
 * The hot path: `m5dev exec [--name <name>] -- <cmd…>` runs the command without loading commander
 * and the command tree (a round trip is meant to cost little more than ssh itself). Any other shape,
 * including options in other forms, help and global options, goes through the full CLI, which
 * defines the same command.
 */
export interface ExecShortcut {
  name: string;
  remote: string[];
}

/** Pure: the exec invocation in `args` (argv after the script), if it has exactly the short path's shape. */
export function execShortcut(args: readonly string[]): ExecShortcut | undefined {
  if (args[0] !== 'exec') return undefined;
  let i = 1;
  let name = 'default';
  const given = args[i + 1];
  if (args[i] === '--name' && given !== undefined && !given.startsWith('-')) {
    name = given;
    i += 2;
  }
  if (args[i] !== '--' || args.length <= i + 1) return undefined;
  return { name, remote: args.slice(i + 1) };
}

export async function runShortcut(s: ExecShortcut): Promise<number> {
  const [{ installSignalHandlers }, { MESSAGES }, { runInGuest }] = await Promise.all([
    import('../cleanup.js'),
    import('../messages.js'),
    import('../workflows/running.js'),
  ]);
  installSignalHandlers(() => process.stderr.write(`\nm5dev: ${MESSAGES.interrupted}\n`));
  return runInGuest(s.name, s.remote, 'exec');
}
