/** Named volumes on the engine (an instance's or a cache's storage where the engine cannot see our files). */
import type Docker from 'dockerode';
import { isNotFound } from './client.js';

/** The volume, made with its labels when missing (an engine would otherwise create it bare on first mount). */
export async function ensureVolume(docker: Docker, name: string, labels: Record<string, string>): Promise<void> {
  try {
    await docker.getVolume(name).inspect();
  } catch (e) {
    if (!isNotFound(e)) throw e;
    await docker.createVolume({ Name: name, Labels: labels });
  }
}

/** Remove the volume and what it holds (none: nothing to do). */
export async function removeVolume(docker: Docker, name: string): Promise<void> {
  try {
    await docker.getVolume(name).remove({ force: true });
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
}

/** Remove every volume that carries all of `labels` (KEY=VALUE). */
export async function removeVolumesLabelled(docker: Docker, labels: string[]): Promise<void> {
  const { Volumes } = await docker.listVolumes({ filters: { label: labels } });
  for (const v of Volumes ?? []) await removeVolume(docker, v.Name);
}
