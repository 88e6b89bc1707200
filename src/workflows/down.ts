/** Stop an instance: clean guest poweroff over SSH, then remove its container (forced after a grace period). */
import type Docker from 'dockerode';
import { forceRemove, listVmContainers, waitExit } from '../docker/containers.js';
import { GuestSsh, chooseSshMode } from '../ssh/client.js';
import type { HomeLayout } from '../paths.js';
import type { InstanceFiles } from '../vm/instance.js';
import { hostControlPath } from '../ssh/args.js';
import { rmSync } from 'node:fs';

export interface DownResult {
  name: string;
  wasRunning: boolean;
  clean: boolean;
}

export async function stopInstance(docker: Docker, home: HomeLayout, files: InstanceFiles, name: string, graceSec = 60): Promise<DownResult> {
  const containers = await listVmContainers(docker, home.root, name);
  let clean = false;
  const running = containers.find((c) => c.state === 'running');
  if (running && graceSec > 0) {
    const ssh = new GuestSsh(files, name, running.sshPort, chooseSshMode(), { docker, id: running.id });
    await ssh.capture(['sudo', 'systemctl', 'poweroff'], { connectTimeoutSec: 5, timeoutMs: 15_000, reuse: false }).catch(() => undefined);
    clean = await waitExit(docker, running.id, graceSec * 1000);
  }
  for (const c of containers) await forceRemove(docker, c.id);
  rmSync(hostControlPath(files.dir), { force: true });
  return { name, wasRunning: running !== undefined, clean };
}
