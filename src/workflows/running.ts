/** Find an instance and its running VM container, for the commands that talk to a live guest. */
import type Docker from 'dockerode';
import { connectDocker } from '../docker/client.js';
import { listVmContainers, type VmContainerInfo } from '../docker/containers.js';
import { InstanceNotFoundError } from '../errors.js';
import { layout, type HomeLayout } from '../paths.js';
import { openInstance, type InstanceFiles, type InstanceState } from '../vm/instance.js';
import { GuestSsh } from '../ssh/client.js';
import { requireState } from './up.js';

export interface LiveInstance {
  docker: Docker;
  home: HomeLayout;
  name: string;
  files: InstanceFiles;
  state: InstanceState;
  container: VmContainerInfo;
  ssh: GuestSsh;
}

export async function liveInstance(name: string): Promise<LiveInstance> {
  const home = layout();
  const files = openInstance(home, name);
  const state = requireState(files, name);
  const docker = await connectDocker();
  const container = (await listVmContainers(docker, home.root, name)).find((c) => c.state === 'running');
  if (!container) throw new InstanceNotFoundError(name, 'is not running');
  return { docker, home, name, files, state, container, ssh: new GuestSsh(docker, container.id, files, name, container.sshPort) };
}
