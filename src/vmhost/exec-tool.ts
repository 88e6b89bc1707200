/**
 * A tool step run with `docker exec` in a container that is already running (the instance's VM
 * container, which has the toolchain and the kernel trees), instead of a throwaway container:
 * no create, start, wait and remove around a short command. Its files live in a fresh directory
 * that is removed afterwards, whatever happened.
 */
import { randomBytes } from 'node:crypto';
import { cleanupScope } from '../cleanup.js';
import { ToolError, toolStepError } from '../errors.js';
import type { RunningVm } from './vm-host.js';

export interface ExecToolRun {
  /** The command (an argv) for the step's own directory (an absolute path); it works there by itself. */
  cmd: (dir: string) => string[];
  description: string;
  env?: string[];
  /** Files into the step's directory before the command runs. */
  before?: (dir: string) => Promise<void>;
  /** Files out of the step's directory after the command succeeded. */
  after?: (dir: string) => Promise<void>;
  failure?: (message: string, outputTail: string) => Error;
}

/** The running VM a step runs beside (see RunningVm.provides for whether it can). */
export type ExecHost = Pick<RunningVm, 'id' | 'capture' | 'putFiles'>;

export async function execTool(host: ExecHost, run: ExecToolRun): Promise<string> {
  const dir = `/tmp/m5dev-step-${randomBytes(6).toString('hex')}`;
  // Removed when the step ends, whatever happened (and on Ctrl-C while it runs).
  await using scope = cleanupScope(`step ${run.description}`);
  scope.defer(`step directory ${dir} in ${host.id.slice(0, 12)}`, () => host.capture(['rm', '-rf', dir]).then(() => undefined));
  const made = await host.capture(['mkdir', '-m', '0700', dir]);
  if (made.exitCode !== 0) throw new ToolError(`${run.description}: could not make ${dir}`, made.stderr);
  await run.before?.(dir);
  const r = await host.capture(run.cmd(dir), { env: run.env });
  const output = `${r.stdout}${r.stderr}`;
  if (r.exitCode !== 0) throw toolStepError(run, r.exitCode, output);
  await run.after?.(dir);
  return output;
}
