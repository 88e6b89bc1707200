/**
 * The VM container's own network, one per instance: the guest's sshd (QEMU's forward in the
 * container) is reachable through the 127.0.0.1 publication and the Engine API, never from other
 * containers, which sit on other bridges (the engine isolates bridges from each other).
 *
 * Its life: made by the `up` that launches the VM, kept while the VM runs or its saved state waits
 * (a resume finds it), removed when an `up` fails and no saved state waits, by `down` and by
 * `destroy`. An engine's address pools hold only about 30 bridges, so none may be left behind.
 */
import type Docker from 'dockerode';
import { NetworkUnavailableError, isPoolExhausted } from '../errors.js';
import { isNotFound } from './client.js';
import { LABELS, baseLabels } from './labels.js';

/** Make the instance's network if it is missing. */
export async function ensureInstanceNetwork(docker: Docker, name: string, home: string, instance: string): Promise<void> {
  try {
    await docker.getNetwork(name).inspect();
    return;
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  try {
    await docker.createNetwork({ Name: name, Driver: 'bridge', CheckDuplicate: true, Labels: { ...baseLabels('network', home), [LABELS.instance]: instance } });
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode === 409) return; // made at the same moment by another m5dev
    const message = (e as Error).message ?? '';
    if (isPoolExhausted(message)) throw new NetworkUnavailableError(message.replace(/^\(HTTP code \d+\)\s*[^-]*-\s*/, '').trim());
    throw e;
  }
}

/** Remove one network by name (gone already is fine). */
export async function removeNetwork(docker: Docker, name: string): Promise<void> {
  await docker.getNetwork(name).remove().catch((e: unknown) => {
    if (!isNotFound(e)) throw e;
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
