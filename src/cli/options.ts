/** Global options, read from any (sub)command. */
import type { Command } from 'commander';
import { layout } from '../paths.js';
import { checkpointLock } from '../workflows/checkpoint-agent.js';

export interface GlobalOptions {
  json?: boolean;
  quiet?: boolean;
  /** false with --no-wait: fail when another m5dev holds the instance or cache entry. */
  wait?: boolean;
}

export function globalOpts(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals<GlobalOptions>();
}

/**
 * Run `fn` holding a lock of this home (an instance's, a cache entry's), as the global options say.
 * proper-lockfile is loaded here, not at start-up: it costs ~30 ms that `status` and the like need not pay.
 */
export async function locked<T>(cmd: Command, resource: string, what: string, fn: () => Promise<T>): Promise<T> {
  const g = globalOpts(cmd);
  const { waitingLine, withLock } = await import('../locks.js');
  return withLock(layout().root, resource, {
    wait: g.wait !== false,
    what,
    onWait: (holder) => {
      if (!g.quiet) process.stderr.write(waitingLine(what, holder));
    },
  }, fn);
}

/** The lock every command that changes an instance (up, suspend, down, destroy) takes. */
export function instanceLock<T>(cmd: Command, name: string, fn: () => Promise<T>): Promise<T> {
  return locked(cmd, `instance-${name}`, `instance ${name}`, fn);
}

/**
 * The locks of the commands that stop an instance's VM (suspend, down, destroy): the instance's, then
 * its checkpoint agent's, so that a stop never cuts a checkpoint's save short. (The agent takes only
 * the latter: a command that needs the guest to answer, such as up or module load, never waits on a
 * save that waits on it.)
 */
export function stoppingLock<T>(cmd: Command, name: string, fn: () => Promise<T>): Promise<T> {
  return instanceLock(cmd, name, () => locked(cmd, checkpointLock(name), `the checkpoints of instance ${name}`, fn));
}
