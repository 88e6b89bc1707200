/** Find an instance and its running VM container, for the commands that talk to a live guest. */
import type Docker from 'dockerode';
import type { VmContainerInfo } from '../docker/containers.js';
import { InstanceNotFoundError } from '../errors.js';
import { layout, type HomeLayout } from '../paths.js';
import { openInstance, requireState, type InstanceFiles, type InstanceState } from '../vm/instance.js';
import { GuestSsh, chooseSshMode } from '../ssh/client.js';

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
  // Loaded here, not above: `m5dev exec` with the host's ssh needs none of them (see runInGuest).
  const [{ connectDocker }, { listVmContainers }, { isSuspended }] = await Promise.all([
    import('../docker/client.js'),
    import('../docker/containers.js'),
    import('../vm/saved-state.js'),
  ]);
  const home = layout();
  const files = openInstance(home, name);
  const state = requireState(files, name);
  const docker = await connectDocker();
  const container = (await listVmContainers(docker, home.root, name)).find((c) => c.state === 'running');
  if (!container) throw new InstanceNotFoundError(name, isSuspended(files) ? 'is suspended' : 'is not running');
  return { docker, home, name, files, state, container, ssh: new GuestSsh(files, name, container.sshPort, chooseSshMode(), { docker, id: container.id }) };
}

/**
 * Run a command in the guest as directly as possible. With the host's ssh, the port comes from the
 * instance state and no Docker call is made (the pinned host key makes a stale port safe: another
 * guest or process cannot answer as this one). Only if ssh cannot connect (exit 255) do we ask the
 * engine, to report a stopped instance clearly. Container mode needs the VM container anyway.
 */
export async function runInGuest(name: string, remote: string[]): Promise<number> {
  if (chooseSshMode() === 'container') return (await liveInstance(name)).ssh.interactive(remote);
  const files = openInstance(layout(), name);
  const state = requireState(files, name);
  const code = await new GuestSsh(files, name, state.sshPort, 'host').interactive(remote);
  if (code === 255) await liveInstance(name); // throws "is not running" when that is the cause
  return code;
}
