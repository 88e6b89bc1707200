/** Global options, read from any (sub)command. */
import type { Command } from 'commander';

export interface GlobalOptions {
  json?: boolean;
  quiet?: boolean;
}

export function globalOpts(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals<GlobalOptions>();
}
