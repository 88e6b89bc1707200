/** Find an instance and its running VM, for the commands that talk to a live guest. */
import { InstanceNotFoundError } from '../errors.js';
import { layout, type HomeLayout } from '../paths.js';
import { STORED, openInstance, requireState, type InstanceFiles, type InstanceState } from '../vm/instance.js';
import type { GuestSsh } from '../ssh/client.js';
import { guestSsh } from '../ssh/guest.js';
import type { Storage, TailVia } from '../engine/storage.js';
import type { Engine } from '../engine/engine.js';
import type { RunningVm, VmHost } from '../vmhost/vm-host.js';
import { userCommand } from '../ssh/guest-command.js';

export interface OpenedInstance {
  engine: Engine;
  /** Where its VM runs (on the engine it was made on, with the files mode it was made with). */
  host: VmHost;
  home: HomeLayout;
  files: InstanceFiles;
  state: InstanceState;
  storage: Storage;
}

export interface LiveInstance extends OpenedInstance {
  name: string;
  vm: RunningVm;
  ssh: GuestSsh;
}

/** An existing instance on the current engine: its files, state, storage and VM host (running or not). */
export async function openOnEngine(name: string): Promise<OpenedInstance> {
  // Loaded here, not above: `m5dev exec` with the host's ssh needs none of them (see runInGuest).
  const [{ connectEngine }, { existingPlacement }] = await Promise.all([import('../engine/engine.js'), import('../vmhost/placement.js')]);
  const home = layout();
  const files = openInstance(home, name);
  const state = requireState(files, name);
  const engine = await connectEngine();
  return { engine, home, files, state, ...existingPlacement(engine, home, files, state) };
}

/**
 * For commands that read an instance's files whether or not it runs (logs, m5ops): its running VM,
 * if any, and the way to read its storage (through that VM while it runs; else directly, or
 * through a helper for a volume).
 */
export function instanceReader(opened: OpenedInstance, name: string) {
  const running = (): Promise<RunningVm | undefined> => opened.host.running(name);
  const via = async (): Promise<TailVia | undefined> => {
    // A storage this machine reads directly needs no VM to read it through (and no engine call).
    if (opened.storage.clientPath(STORED.console) !== undefined) return undefined;
    const vm = await running();
    return vm ? { vm, mountedAt: '/instance' } : undefined;
  };
  return { running, via };
}

export async function liveInstance(name: string): Promise<LiveInstance> {
  const { isSuspended } = await import('../vm/saved-state.js');
  const opened = await openOnEngine(name);
  const vm = await opened.host.running(name);
  if (!vm) throw new InstanceNotFoundError(name, (await isSuspended(opened.storage)) ? 'is suspended' : 'is not running');
  return { ...opened, name, vm, ssh: guestSsh(opened.files, opened.state, vm.sshPort, vm) };
}

/**
 * Run a command in the guest as directly as possible. With the host's ssh, the port comes from the
 * instance state and no Docker call is made (the pinned host key makes a stale port safe: another
 * guest or process cannot answer as this one). Only if ssh cannot connect (exit 255) do we ask the
 * engine, to report a stopped instance clearly. Container mode needs the VM container anyway.
 */
export async function runInGuest(name: string, words: string[], style: 'ssh' | 'exec'): Promise<number> {
  const remote = userCommand(words, style);
  const { chooseSshMode } = await import('../ssh/client.js');
  if (chooseSshMode() === 'container') return (await liveInstance(name)).ssh.interactive(remote);
  const files = openInstance(layout(), name);
  const state = requireState(files, name);
  const code = await guestSsh(files, state, state.sshPort, undefined).interactive(remote);
  if (code === 255) await liveInstance(name); // throws "is not running" when that is the cause
  return code;
}
