/** The engine's images as one client (Engine.images): the only way the layers above reach them. */
import type { DockerClient as Docker } from './client.js';
import { buildImage, ensureBaseImage, imageId, imageLabels, readImageFile, removeImage, type BuildOptions } from './images.js';
import { loadImage, pullImage, pushImage, saveImage, type Progress } from './image-transfer.js';

export interface ImageClient {
  /** The image's ID, or undefined when the engine has no such image. */
  id(ref: string): Promise<string | undefined>;
  /** The base image on the engine (pulled, or bootstrapped when no registry answers); its ID. */
  ensureBase(ref: string): Promise<string>;
  build(opts: BuildOptions): Promise<string>;
  remove(ref: string): Promise<void>;
  readFile(ref: string, path: string): Promise<string>;
  labels(ref: string): Promise<Record<string, string>>;
  repoDigests(ref: string): Promise<string[]>;
  save(ref: string, file: string, onProgress?: (p: Progress) => void): Promise<{ sha256: string; bytes: number }>;
  load(file: string, sha256?: string): Promise<string[]>;
  push(localRef: string, ref: string): Promise<string>;
  pull(ref: string): Promise<{ tag: string; id: string }>;
}

export function imageClient(docker: Docker): ImageClient {
  return {
    id: (ref) => imageId(docker, ref),
    ensureBase: (ref) => ensureBaseImage(docker, ref),
    build: (opts) => buildImage(docker, opts),
    remove: (ref) => removeImage(docker, ref),
    readFile: (ref, path) => readImageFile(docker, ref, path),
    labels: (ref) => imageLabels(docker, ref),
    repoDigests: async (ref) => (await docker.getImage(ref).inspect()).RepoDigests ?? [],
    save: (ref, file, onProgress) => saveImage(docker, ref, file, onProgress),
    load: (file, sha256) => loadImage(docker, file, sha256),
    push: (localRef, ref) => pushImage(docker, localRef, ref),
    pull: (ref) => pullImage(docker, ref),
  };
}
