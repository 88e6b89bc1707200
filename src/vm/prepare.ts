/**
 * Prepare: the idempotent per-instance artefacts (keys, cloud-init seed, flash, disk), each made
 * in the toolchain container from the instance dir and the read-only blob store. Never touches
 * the cached base image.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type Docker from 'dockerode';
import { runTool } from '../docker/containers.js';
import { CACHE_IN_CONTAINER, IN_CONTAINER, hostKeyAlias, type InstanceFiles } from './instance.js';
import { knownHostsLine, metaData, userData } from './cloud-config.js';

export interface ToolEnv {
  docker: Docker;
  image: string;
  home: string;
  blobsDir: string;
  files: InstanceFiles;
}

function binds(env: ToolEnv): string[] {
  return [`${env.files.dir}:/instance`, `${env.blobsDir}:${CACHE_IN_CONTAINER}:ro`];
}

async function tool(env: ToolEnv, description: string, script: string): Promise<string> {
  return runTool(env.docker, {
    image: env.image,
    cmd: ['sh', '-ec', script],
    binds: binds(env),
    home: env.home,
    chownPaths: ['/instance'],
    description,
  });
}

export function keysExist(files: InstanceFiles): boolean {
  return [files.userKey, `${files.userKey}.pub`, files.hostKey, `${files.hostKey}.pub`, files.knownHosts].every((f) => existsSync(f));
}

/** A dedicated ed25519 user key and the guest's ed25519 host key; known_hosts pins the latter. */
export async function makeKeys(env: ToolEnv, name: string): Promise<void> {
  const c = IN_CONTAINER;
  await tool(
    env,
    'ssh-keygen',
    [
      `rm -f ${c.userKey} ${c.userKey}.pub ${c.hostKey} ${c.hostKey}.pub`,
      `ssh-keygen -q -t ed25519 -N '' -C m5dev-${name} -f ${c.userKey}`,
      `ssh-keygen -q -t ed25519 -N '' -C m5dev-${name}-host -f ${c.hostKey}`,
      `chmod 600 ${c.userKey} ${c.hostKey}`,
    ].join('\n'),
  );
  const hostPub = readFileSync(`${env.files.hostKey}.pub`, 'utf8');
  writeFileSync(env.files.knownHosts, knownHostsLine(hostKeyAlias(name), hostPub), { mode: 0o600 });
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
  writeFileSync(env.files.userData, contents.userData, { mode: 0o600 });
  writeFileSync(env.files.metaData, contents.metaData);
  const c = IN_CONTAINER;
  await tool(env, 'cloud-localds', `cloud-localds --disk-format qcow2 ${c.seed}.tmp ${c.userData} ${c.metaData}\nmv ${c.seed}.tmp ${c.seed}`);
}

export function flashExists(files: InstanceFiles): boolean {
  return existsSync(files.flash0) && existsSync(files.flash1);
}

export async function makeFlash(env: ToolEnv): Promise<void> {
  await tool(env, 'EFI flash images', 'm5dev-flash /instance');
}

export type DiskKind = 'raw' | 'overlay';

export function diskPath(files: InstanceFiles, kind: DiskKind): string {
  return kind === 'raw' ? files.diskRaw : files.diskOverlay;
}

/** The instance disk: a raw copy grown by `grow` (the seed), or a qcow2 overlay on the pristine base. */
export async function makeDisk(env: ToolEnv, kind: DiskKind, baseSha256: string, grow: string): Promise<void> {
  const base = `${CACHE_IN_CONTAINER}/${baseSha256}`;
  const script =
    kind === 'raw'
      ? [
          `qemu-img convert -O raw ${base} /instance/disk.raw.tmp`,
          `qemu-img resize -f raw /instance/disk.raw.tmp ${grow}`,
          'mv /instance/disk.raw.tmp /instance/disk.raw',
        ]
      : [
          `fmt=$(qemu-img info --output=json ${base} | sed -n 's/.*"format": *"\\([a-z0-9]*\\)".*/\\1/p' | head -n1)`,
          `qemu-img create -q -f qcow2 -F "$fmt" -b ${base} /instance/disk.qcow2.tmp`,
          `qemu-img resize -q /instance/disk.qcow2.tmp ${grow}`,
          'mv /instance/disk.qcow2.tmp /instance/disk.qcow2',
        ];
  await tool(env, kind === 'raw' ? 'qemu-img convert/resize' : 'qemu-img overlay', script.join('\n'));
}
