/**
 * Prepare: the idempotent per-instance artefacts (keys, cloud-init seed, flash, disk), each made
 * in the toolchain container into the instance's storage, from the read-only blob storage. Never
 * touches the cached base image. The client keeps its own copy of the keys and known_hosts (SSH
 * runs on the client); the storage keeps what QEMU and the container's ssh client need.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { writer, type ContainerFiles, type ToolRun } from '../docker/containers.js';
import { CACHE_IN_CONTAINER, IN_CONTAINER, STORED, hostKeyAlias, type InstanceFiles } from './instance.js';
import { knownHostsLine, metaData, userData } from './cloud-config.js';
import type { Storage } from '../engine/storage.js';
import { scriptCommand } from '../scripts.js';

export interface ToolEnv {
  /** Runs a one-shot tool container (Engine.runTool). */
  runTool: (run: ToolRun) => Promise<string>;
  image: string;
  home: string;
  /** The instance's storage (mounted at /instance) and the blob cache (at /cache, read-only). */
  storage: Storage;
  blobs: Storage;
  files: InstanceFiles;
  owner?: { uid: number; gid: number };
}

/** A tool command with the instance storage at /instance and the blob cache at /cache (read-only). */
async function tool(env: ToolEnv, description: string, cmd: string[], after?: (files: ContainerFiles) => Promise<void>): Promise<string> {
  return env.runTool({
    image: env.image,
    cmd,
    binds: [env.storage.bind('/instance'), env.blobs.bind(CACHE_IN_CONTAINER, true)],
    home: env.home,
    confined: writer(env.owner),
    description,
    after,
  });
}

/** The instance's SSH keys: the user's and the guest's host key, each with its public half. */
export const KEY_FILES = [STORED.userKey, `${STORED.userKey}.pub`, STORED.hostKey, `${STORED.hostKey}.pub`];

export function keysExist(files: InstanceFiles): boolean {
  return [files.userKey, `${files.userKey}.pub`, files.hostKey, `${files.hostKey}.pub`, files.knownHosts].every((f) => existsSync(f));
}

/** A dedicated ed25519 user key and the guest's ed25519 host key; known_hosts pins the latter. */
export async function makeKeys(env: ToolEnv, name: string): Promise<void> {
  const c = IN_CONTAINER;
  // The engine's copy is not the client's: bring the keys over from the keygen container itself,
  // before it is removed (private ones 0600).
  const fetchKeys = async (box: ContainerFiles) => {
    mkdirSync(env.files.dir, { recursive: true, mode: 0o700 });
    for (const n of KEY_FILES) {
      const data = (await box.getFiles(`${c.dir}/${n}`)).values().next().value;
      if (!data) throw new Error(`ssh-keygen left no ${n}`);
      writeFileSync(`${env.files.dir}/${n}`, data, { mode: n.endsWith('.pub') ? 0o644 : 0o600 });
    }
  };
  await tool(env, 'ssh-keygen', scriptCommand('makeKeys', [c.dir, name]), env.storage.clientPath(STORED.userKey) ? undefined : fetchKeys);
  const known = knownHostsLine(hostKeyAlias(name), readFileSync(`${env.files.hostKey}.pub`, 'utf8'));
  writeFileSync(env.files.knownHosts, known, { mode: 0o600 });
  if (!env.storage.clientPath(STORED.knownHosts)) await env.storage.write([{ name: STORED.knownHosts, data: known, mode: 0o600 }]);
}

export function seedContents(files: InstanceFiles, name: string, instanceId: string): { userData: string; metaData: string; hash: string } {
  const ud = userData({
    instanceId,
    hostname: name,
    userPublicKey: readFileSync(`${files.userKey}.pub`, 'utf8'),
    hostKey: { privateKey: readFileSync(files.hostKey, 'utf8'), publicKey: readFileSync(`${files.hostKey}.pub`, 'utf8') },
  });
  const md = metaData({ instanceId, hostname: name });
  return { userData: ud, metaData: md, hash: createHash('sha256').update(ud).update('\0').update(md).digest('hex') };
}

/** cloud-localds --disk-format qcow2, as the seed does. */
export async function makeSeed(env: ToolEnv, contents: { userData: string; metaData: string }): Promise<void> {
  await env.storage.write([
    { name: STORED.userData, data: contents.userData, mode: 0o600 },
    { name: STORED.metaData, data: contents.metaData },
  ]);
  const c = IN_CONTAINER;
  await tool(env, 'cloud-localds', scriptCommand('makeSeed', [c.seed, c.userData, c.metaData]));
}

export async function makeFlash(env: ToolEnv): Promise<void> {
  await tool(env, 'EFI flash images', ['m5dev-flash', IN_CONTAINER.dir]);
}

export type DiskKind = 'raw' | 'overlay';

export function diskName(kind: DiskKind): string {
  return kind === 'raw' ? STORED.diskRaw : STORED.diskOverlay;
}

/** The instance disk: a raw copy grown by `grow` (the seed), or a qcow2 overlay on the pristine base. */
export async function makeDisk(env: ToolEnv, kind: DiskKind, baseSha256: string, grow: string): Promise<void> {
  const base = `${CACHE_IN_CONTAINER}/${baseSha256}`;
  const disk = kind === 'raw' ? IN_CONTAINER.diskRaw : IN_CONTAINER.diskOverlay;
  await tool(env, kind === 'raw' ? 'qemu-img convert/resize' : 'qemu-img overlay', scriptCommand('makeDisk', [kind, base, disk, grow]));
}

/** A job's disk (`m5dev run`): a qcow2 overlay on the user's image in the blob cache, of the format m5dev judged, not grown. */
export async function makeJobDisk(env: ToolEnv, imageSha256: string, format: 'raw' | 'qcow2'): Promise<void> {
  await tool(env, 'qemu-img overlay', scriptCommand('makeDisk', ['overlay', `${CACHE_IN_CONTAINER}/${imageSha256}`, IN_CONTAINER.diskOverlay, '-', format]));
}
