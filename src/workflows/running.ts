/** Find an instance and its running VM container, for the commands that talk to a live guest. */
import type Docker from 'dockerode';
import type { VmContainerInfo } from '../docker/containers.js';
import { InstanceNotFoundError } from '../errors.js';
import { layout, type HomeLayout } from '../paths.js';
import { openInstance, requireState, type InstanceFiles, type InstanceState } from '../vm/instance.js';
import type { GuestSsh } from '../ssh/client.js';
import { guestSsh } from '../ssh/guest.js';
import type { Storage } from '../engine/storage.js';
import type { Engine } from '../engine/engine.js';

export interface LiveInstance {
  engine: Engine;
  docker: Docker;
  home: HomeLayout;
  name: string;
  files: InstanceFiles;
  state: InstanceState;
  storage: Storage;
  container: VmContainerInfo;
  ssh: GuestSsh;
}

/** An existing instance on the current engine: its files, state and storage (running or not). */
export async function openOnEngine(name: string): Promise<{ engine: Engine; home: HomeLayout; files: InstanceFiles; state: InstanceState; storage: Storage }> {
  // Loaded here, not above: `m5dev exec` with the host's ssh needs none of them (see runInGuest).
  const [{ connectEngine }, { existingInstanceStorage }] = await Promise.all([import('../engine/engine.js'), import('../engine/instance-storage.js')]);
  const home = layout();
  const files = openInstance(home, name);
  const state = requireState(files, name);
  const engine = await connectEngine();
  return { engine, home, files, state, storage: existingInstanceStorage(engine, home, files, state) };
}

/**
 * For commands that read an instance's files whether or not it runs (logs, m5ops): its running VM
 * container, if any, and the way to read its storage (on a volume, through that container while
 * it runs; else directly).
 */
export function instanceReader(opened: { engine: Engine; home: HomeLayout; storage: Storage }, name: string) {
  const running = async (): Promise<VmContainerInfo | undefined> => {
    const { listVmContainers } = await import('../docker/containers.js');
    return (await listVmContainers(opened.engine.docker, opened.home.root, name)).find((c) => c.state === 'running');
  };
  const via = async (): Promise<{ id: string; mountedAt: string } | undefined> => {
    if (opened.storage.localDir) return undefined;
    const c = await running();
    return c ? { id: c.id, mountedAt: '/instance' } : undefined;
  };
  return { running, via };
}

export async function liveInstance(name: string): Promise<LiveInstance> {
  const [{ listVmContainers }, { isSuspended }] = await Promise.all([import('../docker/containers.js'), import('../vm/saved-state.js')]);
  const { engine, home, files, state, storage } = await openOnEngine(name);
  const docker = engine.docker;
  const container = (await listVmContainers(docker, home.root, name)).find((c) => c.state === 'running');
  if (!container) throw new InstanceNotFoundError(name, (await isSuspended(storage)) ? 'is suspended' : 'is not running');
  return { engine, docker, home, name, files, state, storage, container, ssh: guestSsh(files, state, container.sshPort, { docker, id: container.id }) };
}

/**
 * Run a command in the guest as directly as possible. With the host's ssh, the port comes from the
 * instance state and no Docker call is made (the pinned host key makes a stale port safe: another
 * guest or process cannot answer as this one). Only if ssh cannot connect (exit 255) do we ask the
 * engine, to report a stopped instance clearly. Container mode needs the VM container anyway.
 */
export async function runInGuest(name: string, remote: string[]): Promise<number> {
  const { chooseSshMode } = await import('../ssh/client.js');
  if (chooseSshMode() === 'container') return (await liveInstance(name)).ssh.interactive(remote);
  const files = openInstance(layout(), name);
  const state = requireState(files, name);
  const code = await guestSsh(files, state, state.sshPort).interactive(remote);
  if (code === 255) await liveInstance(name); // throws "is not running" when that is the cause
  return code;
}
