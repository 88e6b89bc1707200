/** Stop an instance: clean guest poweroff over SSH, then remove its container (forced after a grace period). */
import { forceRemove, listVmContainers, sweepOrphanTools, waitExit } from '../docker/containers.js';
import type { HomeLayout } from '../paths.js';
import type { InstanceFiles, InstanceState } from '../vm/instance.js';
import { hostControlPath } from '../ssh/args.js';
import { privateControlDir } from '../ssh/control-dir.js';
import { guestSsh } from '../ssh/guest.js';
import type { Engine } from '../engine/engine.js';
import { rmSync } from 'node:fs';

export interface DownResult {
  name: string;
  wasRunning: boolean;
  clean: boolean;
}

export interface StoppableInstance {
  engine: Engine;
  home: HomeLayout;
  files: InstanceFiles;
  state: InstanceState;
}

export async function stopInstance(inst: StoppableInstance, graceSec = 60): Promise<DownResult> {
  const { engine, home, files, state } = inst;
  const docker = engine.docker;
  const containers = await listVmContainers(docker, home.root, state.name);
  let clean = false;
  const running = containers.find((c) => c.state === 'running');
  if (running && graceSec > 0) {
    const ssh = guestSsh(files, state, running.sshPort, { docker, id: running.id });
    await ssh.capture(['sudo', 'systemctl', 'poweroff'], { connectTimeoutSec: 5, timeoutMs: 15_000, reuse: false }).catch(() => undefined);
    clean = await waitExit(docker, running.id, graceSec * 1000);
  }
  for (const c of containers) await forceRemove(docker, c.id);
  await sweepOrphanTools(docker); // a killed `up`'s disk conversion would hold the instance's files
  rmSync(hostControlPath(files.dir, privateControlDir()), { force: true });
  return { name: state.name, wasRunning: running !== undefined, clean };
}
