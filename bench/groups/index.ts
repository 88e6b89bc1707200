/** The bench groups, in the order `make bench` runs them (see bench/run.ts). */
import type { BenchGroup } from '../group.js';
import { timeToShell } from './a-time-to-shell.js';
import { noOp } from './b-no-op.js';
import { moduleLoop } from './c-module-loop.js';
import { suspendResumeGroup } from './d-suspend-resume.js';
import { kernelCompile } from './e-kernel-compile.js';
import { remoteEngineGroup } from './f-remote-engine.js';
import { againstBaseGroup } from './g-against-base.js';
import { guestWorkflowGroup } from './h-guest-workflow.js';
import { sideBySideGroup } from './i-side-by-side.js';
import { tcgCacheGroup } from './j-tcg-cache.js';
import { m5opsGroup } from './k-m5ops.js';
import { jobRunGroup } from './l-run.js';

/** In the order they run: the bench-instance groups first (one instance), then those with their own. */
export const GROUPS: BenchGroup[] = [timeToShell, noOp, moduleLoop, suspendResumeGroup, kernelCompile, guestWorkflowGroup, m5opsGroup, jobRunGroup, sideBySideGroup, tcgCacheGroup, remoteEngineGroup, againstBaseGroup];

