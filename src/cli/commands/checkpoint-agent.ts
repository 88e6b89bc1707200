/**
 * `m5dev checkpoint-agent` (hidden): the process that saves an `up --m5ops-checkpoints` guest's
 * checkpoints (workflows/checkpoint-agent.ts), and its start by `up`: detached, its words in the
 * instance's checkpoint-agent.log, on the engine the instance lives on.
 */
import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { join } from 'node:path';
import type { HomeLayout } from '../../paths.js';
import { openInstance, type InstanceFiles } from '../../vm/instance.js';
import { session } from '../../session.js';
import { printable } from '../../terminal-text.js';
import { instanceSession } from '../instance-session.js';
import { CLI_PATH } from '../../ssh/guest.js';
import { AGENT_COMMAND, AGENT_FILES, agentPid, claimAgent, serveCheckpoints } from '../../workflows/checkpoint-agent.js';

export function registerCheckpointAgent(program: Command): void {
  program
    .command(AGENT_COMMAND, { hidden: true })
    .description("save the checkpoints an `up --m5ops-checkpoints` guest asks for, until its VM stops (started by up)")
    .option('--name <name>', 'instance name', 'default')
    .option('--home <dir>', 'the m5dev home the instance belongs to')
    .action(async (opts: { name: string; home?: string }) => {
      const { files } = instanceSession(opts.name, opts.home);
      const release = claimAgent(files);
      if (!release) return; // another agent serves this instance
      // One line each: what it quotes (QEMU's and the guest's words, in errors) cannot start a line of its own.
      const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${printable(line)}\n`);
      log(`checkpoint agent (pid ${process.pid}) for instance ${opts.name}`);
      try {
        const n = await serveCheckpoints(opts.name, log);
        log(`the VM stopped; ${n} checkpoint${n === 1 ? '' : 's'} saved; the agent ends`);
      } finally {
        release();
      }
    });
}

/**
 * The instance's agent, started when none runs: detached from this command, its output appended to
 * the instance's log. Returns its PID once it holds the instance (its PID file), or undefined if it
 * did not within 10 s (its log says why).
 */
export async function ensureCheckpointAgent(home: HomeLayout, name: string): Promise<number | undefined> {
  const files: InstanceFiles = openInstance(home, name);
  const running = agentPid(files);
  if (running !== undefined) return running;
  // Appended to, never through a link planted in the instance directory (which the VM's container can write).
  const out = openSync(join(files.dir, AGENT_FILES.log), constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  try {
    spawn(process.execPath, [CLI_PATH, AGENT_COMMAND, '--name', name, '--home', home.root], { detached: true, stdio: ['ignore', out, out], env: { ...session().env }, cwd: '/' }).unref();
  } finally {
    closeSync(out);
  }
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) {
    const pid = agentPid(files);
    if (pid !== undefined) return pid;
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}
