/**
 * The engine seam: what m5dev's workflows may know about the Docker engine and how they reach its
 * data. One `Engine` per command; its capabilities are probed where the VM runs (the engine), not
 * guessed from the client: CPU architecture, rootless or not, Podman or Docker, whether it sees the
 * client's files, whether /dev/kvm can be given to a container.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { connectDocker, currentEndpoint, engineFacts, type DockerClient } from '../docker/client.js';
import type { Endpoint } from '../docker/endpoint.js';
import { LocalDirStorage, VolumeStorage, type Storage } from './storage.js';
import { LABELS, baseLabels } from '../docker/labels.js';
import { UsageError } from '../errors.js';
import { runTool, runToEnd, vmContainers, type ToolRun, type VmContainers } from '../docker/containers.js';
import { imageClient, type ImageClient } from '../docker/image-client.js';
import { removeVolumesLabelled } from '../docker/volumes.js';
import { session } from '../session.js';

/** `shared`: the engine sees the client's files at the same paths; `volumes`: it does not. */
export type FilesMode = 'shared' | 'volumes';

export interface EngineInfo {
  /** How the engine is reached (DOCKER_HOST form), and where that came from. */
  host: string;
  transport: Endpoint['transport'];
  source: string;
  context?: string;
  product: 'docker' | 'podman';
  version: string;
  os: string;
  /** The engine's CPU architecture, as Docker reports it (x86_64, aarch64). */
  arch: string;
  rootless: boolean;
  /** The engine's own ID (what tells two engines behind one address apart). */
  id: string;
}

/** What an instance records about the engine it lives on, so later commands find its data. */
export interface InstanceEngine {
  host: string;
  context?: string;
  files: FilesMode;
}

export class Engine {
  private described?: EngineInfo;
  private kvm?: boolean;

  /** The engine's images: the one way the layers above reach them (the client itself stays here). */
  readonly images: ImageClient;
  /** The engine's VM containers (the Docker VM host's). */
  readonly containers: VmContainers;

  constructor(
    private readonly docker: DockerClient,
    readonly endpoint: Endpoint,
  ) {
    this.images = imageClient(docker);
    this.containers = vmContainers(docker);
  }

  /** Remove the volumes that carry every one of `labels` (key=value). */
  removeVolumesLabelled(labels: string[]): Promise<void> {
    return removeVolumesLabelled(this.docker, labels);
  }

  async info(): Promise<EngineInfo> {
    if (this.described) return this.described;
    const [info, version] = await engineFacts(this.docker);
    const i = info as { ID?: string; Architecture?: string; OSType?: string; SecurityOptions?: string[]; ServerVersion?: string; host?: { security?: { rootless?: boolean } } };
    const v = version as { Components?: { Name?: string }[]; Version?: string };
    const podman = (v.Components ?? []).some((c) => /podman/i.test(c.Name ?? ''));
    this.described = {
      host: this.endpoint.host,
      transport: this.endpoint.transport,
      source: this.endpoint.source,
      context: this.endpoint.context,
      product: podman ? 'podman' : 'docker',
      version: v.Version ?? i.ServerVersion ?? '?',
      os: i.OSType ?? 'linux',
      arch: normalizeArch(i.Architecture ?? 'unknown'),
      rootless: (i.SecurityOptions ?? []).some((o) => /rootless/.test(o)) || i.host?.security?.rootless === true,
      id: i.ID ?? '',
    };
    return this.described;
  }

  /**
   * Whether the engine sees the client's files: a random marker written under `dir` on the client
   * must read back the same from a container that bind-mounts `dir` (a `Mounts` bind, which fails
   * rather than creating the path on an engine that lacks it). M5DEV_ENGINE_FILES overrides.
   */
  async filesMode(dir: string, image: string, env: Readonly<NodeJS.ProcessEnv> = session().env): Promise<FilesMode> {
    if (env.M5DEV_ENGINE_FILES === 'shared' || env.M5DEV_ENGINE_FILES === 'volumes') return env.M5DEV_ENGINE_FILES;
    if (env.M5DEV_ENGINE_FILES) throw new UsageError(`M5DEV_ENGINE_FILES must be "shared" or "volumes", not "${env.M5DEV_ENGINE_FILES}"`);
    // Probed once per engine and home: the answer is kept beside the home's data.
    const { id } = await this.info();
    const cache = join(dir, 'engines', `${createHash('sha256').update(`${this.endpoint.host}\0${id}`).digest('hex').slice(0, 16)}.json`);
    if (existsSync(cache)) {
      const known = (JSON.parse(readFileSync(cache, 'utf8')) as { files?: FilesMode }).files;
      if (known === 'shared' || known === 'volumes') return known;
    }
    const mode = await this.probeFiles(dir, image);
    mkdirSync(dirname(cache), { recursive: true });
    writeFileSync(`${cache}.tmp`, JSON.stringify({ host: this.endpoint.host, id, files: mode }));
    renameSync(`${cache}.tmp`, cache);
    return mode;
  }

  private async probeFiles(dir: string, image: string): Promise<FilesMode> {
    mkdirSync(dir, { recursive: true });
    const marker = `.engine-probe-${randomBytes(6).toString('hex')}`;
    const token = randomBytes(16).toString('hex');
    writeFileSync(join(dir, marker), token);
    try {
      const { stdout: out } = await runToEnd(this.docker, {
        image,
        cmd: ['cat', `/m5dev-probe/${marker}`],
        labels: baseLabels('tool'),
        mounts: [{ Type: 'bind', Source: dir, Target: '/m5dev-probe', ReadOnly: true }],
      });
      return out.trim() === token ? 'shared' : 'volumes';
    } catch (e) {
      // The engine answered that it has no such path (or refuses the bind): it cannot see our files.
      // Anything else (the engine went away) is no answer, and is never cached as one.
      if ((e as { statusCode?: number }).statusCode !== undefined) return 'volumes';
      throw e;
    } finally {
      rmSync(join(dir, marker), { force: true });
    }
  }

  /** Whether a container on this engine can be given /dev/kvm (probed once, only on arm64 engines). */
  async kvmUsable(image: string): Promise<boolean> {
    if (this.kvm !== undefined) return this.kvm;
    // A device the engine has not (no /dev/kvm there) is a refusal at the start: not usable.
    const probe = await runToEnd(this.docker, {
      image,
      cmd: ['sh', '-c', 'test -r /dev/kvm && test -w /dev/kvm'],
      labels: baseLabels('tool'),
      devices: [{ PathOnHost: '/dev/kvm', PathInContainer: '/dev/kvm', CgroupPermissions: 'rwm' }],
    }).catch(() => undefined);
    return (this.kvm = probe?.statusCode === 0);
  }

  /**
   * Storage for one kind of m5dev data: the client directory itself when the engine shares files,
   * else a labelled volume named after the m5dev home (so two homes never share one).
   */
  storage(mode: FilesMode, localDir: string, spec: { home: string; role: string; instance?: string; helperImage: () => string }): Storage {
    if (mode === 'shared') return new LocalDirStorage(localDir);
    const labels: Record<string, string> = { [LABELS.managed]: 'true', [LABELS.home]: spec.home, [LABELS.role]: spec.role };
    if (spec.instance) labels[LABELS.instance] = spec.instance;
    return new VolumeStorage(this.docker, volumeName(spec.home, spec.role, spec.instance), labels, spec.helperImage);
  }

  /** Run a one-shot tool container to completion (docker/containers.ts runTool). */
  runTool(run: ToolRun): Promise<string> {
    return runTool(this.docker, run);
  }

  /** The toolchain image's compiler and linker versions (cache keys; asked once per image). */
  async toolchainCompiler(image: string, imageId: string, home: string): Promise<string> {
    const { toolchainCompiler } = await import('../docker/compiler.js');
    return toolchainCompiler(this.docker, image, imageId, home);
  }

  /** Files written by a tool container into shared storage belong to the client user: chown them to it when needed. */
  owner(mode: FilesMode, rootless: boolean): { uid: number; gid: number } | undefined {
    const uid = process.getuid?.() ?? 0;
    // Rootless: the container's root already is the client user; a chown would hand files to a subordinate uid.
    if (mode !== 'shared' || rootless || uid === 0) return undefined;
    return { uid, gid: process.getgid?.() ?? 0 };
  }
}

/** Volume names are global to the engine: a hash of the m5dev home keeps homes apart. */
export function volumeName(home: string, role: string, instance?: string): string {
  const h = createHash('sha256').update(home).digest('hex').slice(0, 8);
  return `m5dev-${h}-${role}${instance ? `-${instance}` : ''}`;
}

/** Docker says x86_64/aarch64, Podman amd64/arm64: one spelling. */
export function normalizeArch(a: string): string {
  if (a === 'amd64') return 'x86_64';
  if (a === 'arm64') return 'aarch64';
  return a;
}

export async function connectEngine(): Promise<Engine> {
  const docker = await connectDocker();
  return new Engine(docker, currentEndpoint());
}
