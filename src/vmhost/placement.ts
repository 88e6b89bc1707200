/**
 * Where an instance lives: the VM host that runs its QEMU, the storages of its files, the blob
 * cache and the kernel cache on that engine, who owns what tools write there, and what the
 * instance records of it. An existing instance stays where it was made (its recorded engine and
 * files mode); a new one goes where the engine's files probe says. Workflows get this, never the
 * files mode itself.
 */
import type { Engine, InstanceEngine } from '../engine/engine.js';
import { blobStorage, existingInstanceStorage, instanceStorage, kernelStorage, recordedFilesMode } from '../engine/instance-storage.js';
import type { Storage } from '../engine/storage.js';
import type { HomeLayout } from '../paths.js';
import type { InstanceFiles, InstanceState } from '../vm/instance.js';
import { dockerVmHost } from './docker-vm-host.js';
import type { VmHost } from './vm-host.js';

export interface Placement {
  host: VmHost;
  storage: Storage;
  blobs: Storage;
  kernels: Storage;
  /** Files tool containers write for the client user are chowned to this (see Engine.owner). */
  owner?: { uid: number; gid: number };
  /** What the instance's state records, so later commands find its files. */
  record: InstanceEngine;
}

/** An existing instance's VM host and storage, where it was made (no engine call: the hot paths' view). */
export function existingPlacement(engine: Engine, home: HomeLayout, files: InstanceFiles, state: InstanceState): Pick<Placement, 'host' | 'storage'> {
  return { host: dockerVmHost(engine, home.root, recordedFilesMode(state)), storage: existingInstanceStorage(engine, home, files, state) };
}

export async function placeInstance(engine: Engine, home: HomeLayout, files: InstanceFiles, name: string, state: InstanceState | undefined, helperImage: () => string): Promise<Placement> {
  const mode = state ? recordedFilesMode(state) : await engine.filesMode(home.root, helperImage());
  const { host, storage } = state ? existingPlacement(engine, home, files, state) : { host: dockerVmHost(engine, home.root, mode), storage: instanceStorage(engine, mode, home, files, name, helperImage) };
  const { rootless } = await engine.info();
  return {
    host,
    storage,
    blobs: blobStorage(engine, mode, home, helperImage),
    kernels: kernelStorage(engine, mode, home, helperImage),
    owner: engine.owner(mode, rootless),
    record: { host: engine.endpoint.host, context: engine.endpoint.context, files: mode },
  };
}
