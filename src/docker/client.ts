/** One Docker connection for the process; `connectDocker` proves the engine answers. */
import type Docker from 'dockerode';
import { DockerUnavailableError, EngineHostKeyError } from '../errors.js';
import { onCleanup } from '../cleanup.js';
import { LABELS, SESSION_ID } from './labels.js';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { modemOptions, plaintextWarning, resolveEndpoint, type ConfigReader, type Endpoint, type SshHostCheck } from './endpoint.js';
import { hostKeyAlgorithms, knownHostsName, lookupKnownHosts, verdict } from './known-hosts.js';
import { session } from '../session.js';

let cached: Docker | undefined;

const readConfigFile: ConfigReader = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

/** The engine the docker CLI would use here (DOCKER_HOST, DOCKER_CONTEXT, the current context). */
export function currentEndpoint(env: Readonly<NodeJS.ProcessEnv> = session().env): Endpoint {
  return resolveEndpoint(env, readConfigFile);
}

export async function connectDocker(): Promise<Docker> {
  if (cached) return cached;
  // Loaded on first use: commands that never talk to the engine start faster.
  const { default: DockerClass } = await import('dockerode');
  const endpoint = currentEndpoint();
  const check = endpoint.transport === 'ssh' ? sshHostCheck(endpoint) : undefined;
  const plaintext = plaintextWarning(endpoint);
  if (plaintext) process.stderr.write(`m5dev: warning: ${plaintext}\n`);
  const docker = new DockerClass(modemOptions(endpoint, readConfigFile, session().env, check));
  try {
    await withTimeout(docker.ping(), endpoint.transport === 'ssh' ? 20_000 : 5000);
  } catch (e) {
    if (check?.refused) throw check.refused;
    throw new DockerUnavailableError(`${describe(e)} (${endpoint.host}, from ${endpoint.source})`);
  }
  cached = docker;
  // Registered first, so it runs last: whatever this process created and still exists after the
  // other cleanups (e.g. a create call still in flight when Ctrl-C came) is removed too.
  onCleanup('sweep this session\'s containers', () => sweepSession(docker));
  return docker;
}

/** The host key check of an ssh:// engine; `refused` says why it refused the key the host showed. */
function sshHostCheck(endpoint: Endpoint): SshHostCheck & { refused?: EngineHostKeyError } {
  const url = new URL(endpoint.host);
  const port = Number(url.port || 22);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1'); // an IPv6 address, as known_hosts writes it
  const known = lookupKnownHosts(host, port, homedir());
  const name = knownHostsName(host, port);
  if (!known) throw new EngineHostKeyError(`cannot check the SSH host key of ${name}: ssh-keygen (OpenSSH) is not installed`, 'Install the OpenSSH client (the docker CLI needs it for ssh:// too).');
  const check: SshHostCheck & { refused?: EngineHostKeyError } = {
    serverHostKey: hostKeyAlgorithms(known),
    hostVerifier: (key) => {
      const v = verdict(known, key);
      if (v !== 'known') check.refused = EngineHostKeyError.of(v, name, url);
      return v === 'known';
    },
  };
  return check;
}

function describe(e: unknown): string {
  const err = e as NodeJS.ErrnoException & { address?: string };
  if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
    return `${err.code}`;
  }
  if (err.code === 'EACCES') return 'permission denied on the Docker socket (add yourself to the docker group)';
  return err.message ?? String(e);
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => { clearTimeout(t); resolve(v); },
      (e: unknown) => { clearTimeout(t); reject(e instanceof Error ? e : new Error(String(e))); },
    );
  });
}

export function isNotFound(e: unknown): boolean {
  return (e as { statusCode?: number }).statusCode === 404;
}

/** Containers this process created that outlive it on purpose (a VM whose guest answered). */
const kept = new Set<string>();

/** Keep a container of this session out of the final sweep (the guest in it is up: it is the user's now). */
export function keepFromSweep(id: string): void {
  kept.add(id);
}

async function sweepSession(docker: Docker): Promise<void> {
  await new Promise((r) => setTimeout(r, 300)); // let in-flight create calls land
  const list = await docker.listContainers({ all: true, filters: { label: [`${LABELS.session}=${SESSION_ID}`] } });
  await Promise.all(list.filter((c) => !kept.has(c.Id)).map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
}

/** The Engine API client, as the layers above docker/ hold it: a handle they pass back to docker/'s functions. */
export type DockerClient = Docker;

/** What the engine says of itself (`docker info` and `docker version`). */
export async function engineFacts(docker: Docker): Promise<[unknown, unknown]> {
  return Promise.all([docker.info(), docker.version()]);
}
