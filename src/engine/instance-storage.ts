/** The storages of one m5dev home on an engine: per instance, the blob cache; and finding an instance's engine again. */
import type { HomeLayout } from '../paths.js';
import type { InstanceFiles, InstanceState } from '../vm/instance.js';
import { UsageError } from '../errors.js';
import type { Engine, FilesMode } from './engine.js';
import type { Storage } from './storage.js';
import { LABELS } from '../docker/labels.js';

export function instanceStorage(engine: Engine, mode: FilesMode, home: HomeLayout, files: InstanceFiles, name: string, helperImage: () => string): Storage {
  return engine.storage(mode, files.dir, { home: home.root, role: 'instance', instance: name, helperImage });
}

export function blobStorage(engine: Engine, mode: FilesMode, home: HomeLayout, helperImage: () => string): Storage {
  return engine.storage(mode, home.blobs, { home: home.root, role: 'blobs', helperImage });
}

export function kernelStorage(engine: Engine, mode: FilesMode, home: HomeLayout, helperImage: () => string): Storage {
  return engine.storage(mode, home.kernels, { home: home.root, role: 'kernels', helperImage });
}

/** What kernel and module builds use on an engine: its files mode, the blob cache and the kernel cache. */
export interface HomeStores {
  mode: FilesMode;
  blobs: Storage;
  kernels: Storage;
}

export async function homeStores(engine: Engine, home: HomeLayout, helperImage: string): Promise<HomeStores> {
  const mode = await engine.filesMode(home.root, helperImage);
  const stores = { mode, blobs: blobStorage(engine, mode, home, () => helperImage), kernels: kernelStorage(engine, mode, home, () => helperImage) };
  await Promise.all([stores.blobs.ensure(), stores.kernels.ensure()]);
  return stores;
}

/** The files mode an instance was made with (an instance from before the record was made with `shared`). */
export function recordedFilesMode(state: InstanceState): FilesMode {
  return state.engine?.files ?? 'shared';
}

/**
 * The storage of an existing instance, on the engine it was created on. An instance made before
 * m5dev recorded its engine lived in the client's own files.
 */
export function existingInstanceStorage(engine: Engine, home: HomeLayout, files: InstanceFiles, state: InstanceState): Storage {
  const recorded = state.engine;
  if (recorded && recorded.host !== engine.endpoint.host) {
    throw new UsageError(
      `instance ${state.name} lives on the Docker engine at ${recorded.host}, not on ${engine.endpoint.host}`,
      `Point DOCKER_HOST (or DOCKER_CONTEXT) at ${recorded.host}${recorded.context ? ` (context ${recorded.context})` : ''}, or use another --name on this engine.`,
    );
  }
  const image = state.image;
  return instanceStorage(engine, recordedFilesMode(state), home, files, state.name, () => {
    if (!image) throw new UsageError(`instance ${state.name} has no recorded toolchain image`, 'Run `m5dev up` once to record it.');
    return image;
  });
}

/** Volumes of this home's instance left on the engine (labelled when they were made): an `up` cut short before it recorded its state. */
export async function removeInstanceVolumes(engine: Engine, home: string, name: string): Promise<void> {
  await engine.removeVolumesLabelled([`${LABELS.home}=${home}`, `${LABELS.instance}=${name}`]);
}
