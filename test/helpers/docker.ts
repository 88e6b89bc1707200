/** Real-engine helpers: every resource a test creates is labelled and removed by that label. */
import Docker from 'dockerode';
import { LABELS } from '../../src/docker/labels.js';

export const docker = new Docker();

/** Containers of an m5dev home; with `instance`, only that instance's (a home shared by test files, such as the kernel home). */
export async function containersOfHome(home: string, instance?: string): Promise<Docker.ContainerInfo[]> {
  const label = [`${LABELS.home}=${home}`, ...(instance ? [`${LABELS.instance}=${instance}`] : [])];
  return docker.listContainers({ all: true, filters: { label } });
}

/** The names of the networks an m5dev home has on an engine (one per instance that runs or is suspended). */
export async function networksOn(engine: Docker, home: string): Promise<string[]> {
  return (await engine.listNetworks({ filters: { label: [`${LABELS.home}=${home}`] } })).map((n) => n.Name).sort();
}

/** The same on the local engine. */
export const networksOfHome = (home: string): Promise<string[]> => networksOn(docker, home);

export async function removeContainersOfHome(home: string, instance?: string): Promise<void> {
  for (const c of await containersOfHome(home, instance)) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
  // The instances' own networks (see src/docker/networks.ts), once their containers are gone.
  const label = [`${LABELS.home}=${home}`, ...(instance ? [`${LABELS.instance}=${instance}`] : [])];
  for (const n of await docker.listNetworks({ filters: { label } })) await docker.getNetwork(n.Id).remove().catch(() => undefined);
}

export const TEST_LABEL = 'dev.m5dev.test';
