/**
 * The VM container's own network, one per instance: the guest's sshd (QEMU's forward in the
 * container) is reachable through the 127.0.0.1 publication and the Engine API, never from other
 * containers, which sit on other bridges (the engine isolates bridges from each other).
 */
import type Docker from 'dockerode';
import { isNotFound } from './client.js';
import { LABELS, baseLabels } from './labels.js';

/** Make the instance's network if it is missing (it outlives `down`; `destroy` removes it). */
export async function ensureInstanceNetwork(docker: Docker, name: string, home: string, instance: string): Promise<void> {
  try {
    await docker.getNetwork(name).inspect();
    return;
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  await docker
    .createNetwork({ Name: name, Driver: 'bridge', CheckDuplicate: true, Labels: { ...baseLabels('network', home), [LABELS.instance]: instance } })
    .catch((e: unknown) => {
      if ((e as { statusCode?: number }).statusCode !== 409) throw e; // made at the same moment by another m5dev
    });
}

/** Remove an instance's networks (by label, so a renamed home's leftovers go too). */
export async function removeInstanceNetworks(docker: Docker, home: string, instance: string): Promise<void> {
  const list = await docker.listNetworks({ filters: { label: [`${LABELS.home}=${home}`, `${LABELS.instance}=${instance}`] } });
  for (const n of list) {
    await docker.getNetwork(n.Id).remove().catch((e: unknown) => {
      if (!isNotFound(e)) throw e;
    });
  }
}
