/** Real-engine helpers: every resource a test creates is labelled and removed by that label. */
import Docker from 'dockerode';
import { LABELS } from '../../src/docker/labels.js';

export const docker = new Docker();

export async function containersOfHome(home: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${LABELS.home}=${home}`] } });
}

export async function removeContainersOfHome(home: string): Promise<void> {
  for (const c of await containersOfHome(home)) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
  // The instances' own networks (see src/docker/networks.ts), once their containers are gone.
  for (const n of await docker.listNetworks({ filters: { label: [`${LABELS.home}=${home}`] } })) await docker.getNetwork(n.Id).remove().catch(() => undefined);
}

export const TEST_LABEL = 'dev.m5dev.test';
