/**
 * `m5dev up` for one instance, as phases with typed values: find the instance and reconcile it with
 * what was asked (attach, or start), prepare its artefacts, launch QEMU (boot or resume), provision
 * the guest over SSH. Each phase takes what it needs and returns what it made; progress goes to a
 * Reporter. What the launch made (the VM container) is undone when a later phase fails before the
 * guest answers, or on Ctrl-C.
 */
import { cleanupScope } from '../cleanup.js';
import { UsageError } from '../errors.js';
import { MESSAGES } from '../messages.js';
import type { VmConfig } from '../config.js';
import type { InstanceState } from '../vm/instance.js';
import type { RunningVm } from '../vmhost/vm-host.js';
import type { Toolchain } from './image-build.js';
import type { KernelBoot } from './kernel-boot.js';
import type { Reporter } from './report.js';
import { findInstance, type UpRequest } from './up/instance.js';
import { prepare } from './up/prepare.js';
import { launch, type Running } from './up/launch.js';
import { provision } from './up/provision.js';

export type { UpRequest } from './up/instance.js';

/** What `up` made of one instance. */
export interface UpResult {
  name: string;
  sshPort: number;
  state: InstanceState;
  kernel: KernelBoot | undefined;
  config: VmConfig;
  bootSeconds: number;
  alreadyRunning: boolean;
  resumed: boolean;
  notes: string[];
  vm: RunningVm;
}

export async function upInstance(report: Reporter, toolchain: Toolchain, req: UpRequest): Promise<UpResult> {
  await using scope = cleanupScope(`up ${req.name}`);
  const plan = await findInstance(report, toolchain, req);
  let running: Running;
  if (plan.kind === 'attach') {
    const { found, vm } = plan;
    if (!found.state) throw new UsageError(`instance ${req.name} runs, but its state file is gone`, `Stop it (\`m5dev down --name ${req.name}\`), then run up again.`);
    await report.skipped('Prepare and start QEMU', MESSAGES.alreadyRunning(req.name));
    running = { found, vm, state: found.state, sshPort: vm.sshPort, resumed: false, dropping: Promise.resolve(), portableKey: '' };
  } else {
    running = await launch(report, await prepare(report, plan.found, plan.saved), scope);
  }
  await req.whenRunning?.(running.state);
  const { bootSeconds } = await provision(report, running, scope);
  const { found } = running;
  return {
    name: req.name,
    sshPort: running.sshPort,
    state: running.state,
    kernel: found.kernel,
    config: found.config,
    bootSeconds,
    alreadyRunning: plan.kind === 'attach',
    resumed: running.resumed,
    notes: found.notes,
    vm: running.vm,
  };
}
