/** The guest lifecycle commands. */
import type { Command } from 'commander';
import { registerUp } from './up.js';
import { registerSsh } from './ssh.js';
import { registerStatus } from './status.js';
import { registerLogs } from './logs.js';
import { registerDown } from './down.js';
import { registerSuspend } from './suspend.js';
import { registerDoctor } from './doctor.js';
import { registerCp } from './cp.js';
import { registerM5ops } from './m5ops.js';
import { registerCheckpoints, registerRun } from './run.js';
import { registerInit } from './init.js';
import { registerCheckpointAgent } from './checkpoint-agent.js';

export function registerVm(program: Command): void {
  registerUp(program);
  registerSsh(program);
  registerCp(program);
  registerStatus(program);
  registerLogs(program);
  registerSuspend(program);
  registerDown(program);
  registerDoctor(program);
  registerM5ops(program);
  registerRun(program);
  registerCheckpoints(program);
  registerInit(program);
  registerCheckpointAgent(program);
}
