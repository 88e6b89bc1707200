/** Stop an instance: clean guest poweroff over SSH, then remove its VM (forced after a grace period). */
import type { InstanceFiles, InstanceState } from '../vm/instance.js';
import { hostControlPath } from '../ssh/args.js';
import { privateControlDir } from '../ssh/control-dir.js';
import { guestSsh } from '../ssh/guest.js';
import type { VmHost } from '../vmhost/vm-host.js';
import { rmSync } from 'node:fs';
import { guestArgv } from '../ssh/guest-command.js';

export interface DownResult {
  name: string;
  wasRunning: boolean;
  clean: boolean;
}

export interface StoppableInstance {
  host: VmHost;
  files: InstanceFiles;
  state: InstanceState;
}

export async function stopInstance(inst: StoppableInstance, graceSec = 60): Promise<DownResult> {
  const { host, files, state } = inst;
  const vms = (await host.list(state.name)).map((e) => ({ e, vm: host.attach(e) }));
  let clean = false;
  const running = vms.find((v) => v.e.running);
  if (running && graceSec > 0) {
    const ssh = guestSsh(files, state, running.e.sshPort, running.vm);
    await ssh.capture(guestArgv(['systemctl', 'poweroff'], { root: true }), { connectTimeoutSec: 5, timeoutMs: 15_000, reuse: false }).catch(() => undefined);
    clean = await running.vm.waitExit(graceSec * 1000);
  }
  for (const v of vms) await v.vm.remove();
  await host.sweepOrphans(); // a killed `up`'s disk conversion would hold the instance's files
  rmSync(hostControlPath(files.dir, privateControlDir()), { force: true });
  return { name: state.name, wasRunning: running !== undefined, clean };
}
