/**
 * Which Docker engine m5dev talks to, resolved exactly as the docker CLI does it (pure, given the
 * environment and a reader for the docker config dir): DOCKER_HOST (with DOCKER_TLS_VERIFY and
 * DOCKER_CERT_PATH) wins; else DOCKER_CONTEXT; else config.json's currentContext; else the default
 * socket. A context's endpoint and TLS material come from the CLI's context store.
 */
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../errors.js';

export type Transport = 'unix' | 'npipe' | 'tcp' | 'ssh';

export interface Endpoint {
  /** The engine address, as DOCKER_HOST would spell it. */
  host: string;
  transport: Transport;
  /** Where it came from: `DOCKER_HOST`, `context <name>` or `default`. */
  source: string;
  /** Context name, when one was used (recorded so later commands reach the same engine). */
  context?: string;
  /** TLS for tcp://: verify the server against `ca`; client certificate when present. */
  tls?: { verify: boolean; caFile?: string; certFile?: string; keyFile?: string };
}

/** Reads a file of the docker config dir; undefined when it does not exist. */
export type ConfigReader = (path: string) => string | undefined;

export const DEFAULT_UNIX_HOST = 'unix:///var/run/docker.sock';

export function dockerConfigDir(env: NodeJS.ProcessEnv): string {
  return env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker');
}

export function transportOf(host: string): Transport {
  const scheme = /^([a-z]+):\/\//.exec(host)?.[1];
  if (scheme === 'unix' || scheme === 'npipe' || scheme === 'tcp' || scheme === 'ssh') return scheme;
  if (scheme === 'http' || scheme === 'https') return 'tcp';
  throw new UsageError(`unsupported Docker host "${host}"`, 'Use unix:///path, tcp://host:port, ssh://user@host or npipe://, as the docker CLI does.');
}

/** The docker CLI's context store keeps each context under the sha256 of its name. */
export function contextDirName(name: string): string {
  return createHash('sha256').update(name).digest('hex');
}

export function resolveEndpoint(env: NodeJS.ProcessEnv, read: ConfigReader): Endpoint {
  const cfg = dockerConfigDir(env);
  if (env.DOCKER_HOST) {
    const host = env.DOCKER_HOST;
    const transport = transportOf(host);
    const endpoint: Endpoint = { host, transport, source: 'DOCKER_HOST' };
    // As the docker CLI: any non-empty DOCKER_TLS_VERIFY means TLS with verification; DOCKER_TLS, TLS without.
    const verify = Boolean(env.DOCKER_TLS_VERIFY);
    if (transport === 'tcp' && (verify || Boolean(env.DOCKER_TLS) || host.startsWith('https://'))) {
      const certs = env.DOCKER_CERT_PATH || cfg;
      const file = (f: string) => (read(join(certs, f)) !== undefined ? join(certs, f) : undefined);
      endpoint.tls = { verify, caFile: file('ca.pem'), certFile: file('cert.pem'), keyFile: file('key.pem') };
    }
    return endpoint;
  }
  const name = env.DOCKER_CONTEXT || currentContext(read(join(cfg, 'config.json')));
  if (!name || name === 'default') return { host: DEFAULT_UNIX_HOST, transport: 'unix', source: 'default' };
  return contextEndpoint(name, cfg, read);
}

function currentContext(configJson: string | undefined): string | undefined {
  if (!configJson) return undefined;
  try {
    const c = (JSON.parse(configJson) as { currentContext?: unknown }).currentContext;
    return typeof c === 'string' && c ? c : undefined;
  } catch {
    throw new UsageError('the docker config.json is not valid JSON', 'Fix or remove it (see `docker context ls`).');
  }
}

interface ContextMeta {
  Name?: string;
  Endpoints?: { docker?: { Host?: string; SkipTLSVerify?: boolean } };
}

function contextEndpoint(name: string, cfg: string, read: ConfigReader): Endpoint {
  const id = contextDirName(name);
  const raw = read(join(cfg, 'contexts', 'meta', id, 'meta.json'));
  if (!raw) throw new UsageError(`Docker context "${name}" does not exist`, 'List contexts with `docker context ls`, or unset DOCKER_CONTEXT.');
  let meta: ContextMeta;
  try {
    meta = JSON.parse(raw) as ContextMeta;
  } catch {
    throw new UsageError(`Docker context "${name}" has an unreadable meta.json`, 'Recreate it with `docker context create`.');
  }
  const ep = meta.Endpoints?.docker;
  if (!ep?.Host) throw new UsageError(`Docker context "${name}" has no docker endpoint`, 'Recreate it with `docker context create --docker host=…`.');
  const transport = transportOf(ep.Host);
  const endpoint: Endpoint = { host: ep.Host, transport, source: `context ${name}`, context: name };
  if (transport === 'tcp') {
    const tlsDir = join(cfg, 'contexts', 'tls', id, 'docker');
    const has = (f: string) => read(join(tlsDir, f)) !== undefined;
    if (has('ca.pem') || has('cert.pem')) {
      endpoint.tls = {
        verify: ep.SkipTLSVerify !== true,
        caFile: has('ca.pem') ? join(tlsDir, 'ca.pem') : undefined,
        certFile: has('cert.pem') ? join(tlsDir, 'cert.pem') : undefined,
        keyFile: has('key.pem') ? join(tlsDir, 'key.pem') : undefined,
      };
    }
  }
  return endpoint;
}

/** dockerode/docker-modem options for an endpoint (files are read by the caller's reader). Pure. */
/** How an ssh:// engine's host key is checked (known-hosts.ts): the verifier, and the key types to ask for. */
export interface SshHostCheck {
  hostVerifier: (key: Buffer) => boolean;
  serverHostKey?: string[];
}

export function modemOptions(e: Endpoint, read: ConfigReader, env: NodeJS.ProcessEnv, ssh?: SshHostCheck): Record<string, unknown> {
  const url = () => new URL(e.host.replace(/^tcp:/, e.tls ? 'https:' : 'http:'));
  switch (e.transport) {
    case 'unix':
      return { socketPath: e.host.slice('unix://'.length) || '/var/run/docker.sock' };
    case 'npipe':
      return { socketPath: e.host.slice('npipe://'.length) || '//./pipe/docker_engine' };
    case 'ssh':
      return {
        protocol: 'ssh',
        host: url().hostname,
        port: url().port || '22',
        username: url().username || undefined,
        sshOptions: {
          ...(env.SSH_AUTH_SOCK ? { agent: env.SSH_AUTH_SOCK } : {}),
          ...(ssh ? { hostVerifier: ssh.hostVerifier } : {}),
          ...(ssh?.serverHostKey ? { algorithms: { serverHostKey: ssh.serverHostKey } } : {}),
        },
      };
    case 'tcp': {
      const opts: Record<string, unknown> = { protocol: e.tls ? 'https' : 'http', host: url().hostname, port: url().port || (e.tls ? '2376' : '2375') };
      if (e.tls) {
        const load = (f: string | undefined, what: string) => {
          if (!f) return undefined;
          const v = read(f);
          if (v === undefined) throw new UsageError(`TLS ${what} ${f} cannot be read`, 'Set DOCKER_CERT_PATH to the directory holding ca.pem, cert.pem and key.pem.');
          return v;
        };
        if (e.tls.caFile) opts.ca = load(e.tls.caFile, 'CA certificate');
        if (e.tls.certFile) opts.cert = load(e.tls.certFile, 'client certificate');
        if (e.tls.keyFile) opts.key = load(e.tls.keyFile, 'client key');
        if (!e.tls.verify) opts.rejectUnauthorized = false;
      }
      return opts;
    }
  }
}

/**
 * Pure: the warning a plaintext tcp:// engine deserves (undefined for any other): whoever reaches
 * its port controls the engine, root on its host, and on a network every byte m5dev sends
 * (sources, keys, the guest's files) can be read and changed on the way.
 */
export function plaintextWarning(e: Endpoint): string | undefined {
  if (e.transport !== 'tcp' || e.tls) return undefined;
  const host = new URL(e.host.replace(/^tcp:/, 'http:')).hostname.replace(/^\[(.*)\]$/, '$1');
  const loopback = host === 'localhost' || host === '::1' || /^127\./.test(host);
  return loopback
    ? `the engine ${e.host} (${e.source}) speaks plain TCP: every local user who can reach that port controls it (root on its host); prefer its unix socket, or TLS (DOCKER_TLS_VERIFY=1)`
    : `the engine ${e.host} (${e.source}) speaks plain TCP over the network: anyone on the path can read and change what m5dev sends and take over the engine (root on its host); use TLS (DOCKER_TLS_VERIFY=1 with DOCKER_CERT_PATH) or ssh://`;
}
