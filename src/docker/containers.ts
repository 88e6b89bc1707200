/** Container resource client: one-shot tool runs, the long-lived VM container, exec, lookup, removal. */
import { engineMount, type Mount } from './mounts.js';
import type Docker from 'dockerode';
import { PassThrough } from 'node:stream';
import { createHash } from 'node:crypto';
import { cleanupScope, isInterrupting, type CleanupScope } from '../cleanup.js';
import { ExitCode, InterruptedError, M5devError, PortInUseError, toolStepError } from '../errors.js';
import { isNotFound, keepFromSweep } from './client.js';
import { CLIENT, LABELS, baseLabels } from './labels.js';
import { clientAlive } from '../client-id.js';
import { ensureInstanceNetwork, removeInstanceNetworks, removeNetwork } from './networks.js';
import { getFiles, getTree, putFiles, putLocalFile, type FileData } from './archive.js';

export interface ToolRun {
  image: string;
  cmd: string[];
  binds: Mount[];
  home: string;
  description: string;
  env?: string[];
  /** Called with each output line while the tool runs (progress). */
  onLine?: (line: string) => void;
  /** Turn a failure (exit code, output tail) into the caller's typed error; default ToolError. */
  failure?: (message: string, outputTail: string) => Error;
  /** Files into the created container before it starts (tar over the Engine API). */
  before?: (files: ContainerFiles) => Promise<void>;
  /** Files out of the container after it succeeded, before it is removed. */
  after?: (files: ContainerFiles) => Promise<void>;
  /** The engine's default network instead of none (apt resolving the toolchain lock). */
  network?: boolean;
  /**
   * As this uid:gid, with no capability at all, no way to gain one (no-new-privileges), and no
   * network. Every tool that builds or writes the user's files runs so (see `writer`): a module's
   * Kbuild may come from a share the guest writes, and what a tool writes is then the user's own,
   * not root's chowned after. Without it a tool runs as the image's root (apt, the volume helper).
   */
  confined?: { uid: number; gid: number };
}

/**
 * Who a tool writing into the engine's storage runs as: the client user where the engine shares
 * its files (rootful Docker, a non-root user), else the container's root, which already is the
 * user (rootless engines) or owns a volume's files; never with a capability (ToolRun.confined).
 */
export function writer(owner: { uid: number; gid: number } | undefined): { uid: number; gid: number } {
  return owner ?? { uid: 0, gid: 0 };
}

/** HostConfig for a confined tool run (see ToolRun.confined). */
export function confinement(c: { uid: number; gid: number } | undefined): { User?: string; HostConfig: Record<string, unknown> } {
  if (!c) return { HostConfig: {} };
  return { User: `${c.uid}:${c.gid}`, HostConfig: { CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'], NetworkMode: 'none' } };
}

/** A container's files, in and out as tar streams over the Engine API (a ToolRun's hooks get them; so does a RunningVm). */
export interface ContainerFiles {
  /** Small files into `dir`; with `owner`, they and the directories they make belong to that uid:gid. */
  putFiles: (dir: string, files: FileData[], owner?: { uid: number; gid: number }) => Promise<void>;
  /** Stream one client file into `dir` as `name`. */
  putLocalFile: (dir: string, localPath: string, name: string) => Promise<void>;
  getFiles: (path: string) => Promise<Map<string, Buffer>>;
  /**
   * The regular files and directories under `path` into the client directory `localDir`, as plain
   * files of whoever runs m5dev (no links, devices, setuid/setgid/sticky bits or archive owners).
   */
  getTree: (path: string, localDir: string) => Promise<void>;
}

export function containerFiles(docker: Docker, id: string): ContainerFiles {
  return {
    putFiles: (dir, files, owner) => putFiles(docker, id, dir, files, owner),
    putLocalFile: (dir, localPath, name) => putLocalFile(docker, id, dir, localPath, name),
    getFiles: (path) => getFiles(docker, id, path),
    getTree: (path, localDir) => getTree(docker, id, path, localDir, { plain: true }),
  };
}

/** Run a command to completion in a throwaway toolchain container; non-zero exit is a ToolError. */
export async function runTool(docker: Docker, run: ToolRun): Promise<string> {
  const confined = confinement(run.confined);
  const container = await docker.createContainer({
    Image: run.image,
    Cmd: run.cmd,
    Env: run.env,
    Labels: baseLabels('tool', run.home),
    ...(confined.User ? { User: confined.User } : {}),
    HostConfig: { Mounts: run.binds.map(engineMount), ...(run.network ? {} : { NetworkMode: 'none' }), ...confined.HostConfig },
  });
  // Removed when the run ends, whatever happened (and on Ctrl-C while it runs).
  await using scope = cleanupScope(`tool: ${run.description}`);
  scope.defer(`tool container ${container.id.slice(0, 12)}`, () => forceRemove(docker, container.id));
  if (isInterrupting()) throw new InterruptedError();
  const files = containerFiles(docker, container.id);
  if (run.confined) await ensureUserEntry(files, run.confined);
  await run.before?.(files);
  await container.start();
  const following = run.onLine ? followLines(docker, container.id, run.onLine) : Promise.resolve();
  const { StatusCode } = (await container.wait()) as { StatusCode: number };
  await following;
  const output = await containerLogs(docker, container.id);
  if (StatusCode !== 0) throw toolStepError(run, StatusCode, output);
  await run.after?.(containerFiles(docker, container.id));
  return output;
}

/**
 * A confined run's uid in the container's /etc/passwd and gid in /etc/group (the invoking user's
 * uid is rarely the image's): tools that look their user up (ssh-keygen does, and gives up without
 * one) find `m5dev` with home /tmp. Written through the archive endpoint before the start.
 */
async function ensureUserEntry(files: ContainerFiles, user: { uid: number; gid: number }): Promise<void> {
  const read = async (path: string) => (await files.getFiles(path)).values().next().value?.toString('utf8') ?? '';
  const add: FileData[] = [];
  const passwd = await read('/etc/passwd');
  if (!passwd.split('\n').some((l) => l.split(':')[2] === String(user.uid))) add.push({ name: 'passwd', data: `${passwd.replace(/\n?$/, '\n')}m5dev:x:${user.uid}:${user.gid}:m5dev:/tmp:/bin/sh\n` });
  const group = await read('/etc/group');
  if (!group.split('\n').some((l) => l.split(':')[2] === String(user.gid))) add.push({ name: 'group', data: `${group.replace(/\n?$/, '\n')}m5dev:x:${user.gid}:\n` });
  if (add.length) await files.putFiles('/etc', add);
}

/** Stream a container's output line by line until it exits. */
async function followLines(docker: Docker, id: string, onLine: (line: string) => void): Promise<void> {
  const stream = (await docker.getContainer(id).logs({ follow: true, stdout: true, stderr: true }));
  const out = new PassThrough();
  docker.modem.demuxStream(stream, out, out);
  let pending = '';
  out.on('data', (c: Buffer) => {
    const parts = (pending + c.toString('utf8')).split('\n');
    pending = parts.pop() ?? '';
    for (const p of parts) if (p.trim()) onLine(p);
  });
  await new Promise<void>((resolve) => {
    stream.on('end', () => resolve());
    stream.on('error', () => resolve());
  });
}

export async function containerLogs(docker: Docker, id: string): Promise<string> {
  const buf = await docker.getContainer(id).logs({ stdout: true, stderr: true, follow: false });
  return demuxBuffer(buf);
}

/** Docker's multiplexed log format: 8-byte headers (stream, 0,0,0, size BE32) before each frame. */
export function demuxBuffer(buf: Buffer): string {
  const parts: Buffer[] = [];
  let off = 0;
  while (off + 8 <= buf.length) {
    const type = buf[off];
    const size = buf.readUInt32BE(off + 4);
    if ((type !== 1 && type !== 2 && type !== 0) || buf[off + 1] !== 0 || off + 8 + size > buf.length) {
      return buf.toString('utf8'); // not multiplexed (TTY container)
    }
    parts.push(buf.subarray(off + 8, off + 8 + size));
    off += 8 + size;
  }
  return Buffer.concat(parts).toString('utf8');
}

export interface VmContainerSpec {
  name: string;
  image: string;
  cmd: string[];
  binds: Mount[];
  home: string;
  instance: string;
  hostPort: number;
  containerPort: number;
  kvm: boolean;
  /** A tmpfs of the container's own (gone with it). */
  tmpfs?: { path: string; sizeMiB: number };
  /** After a failure: keep the instance's network (a saved state waits to be resumed on it). */
  keepNetwork: () => Promise<boolean>;
}

/**
 * The VM container's capabilities: none of Docker's defaults but these (no MKNOD, NET_RAW,
 * SETFCAP, SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, AUDIT_WRITE, FSETID), and no way to gain more.
 */
export const VM_CAPABILITIES = [
  // QEMU and the steps beside it (docker exec: the RAM copy, the saved state, the relay) run as
  // root on files that belong to the invoking user (a local engine sharing this machine's files):
  'DAC_OVERRIDE', // open and write them
  'FOWNER', // set their times, modes and QEMU's user.virtfs.* attributes on a share
  'CHOWN', // hand files made in the instance to that user
  // QEMU's -runas: it opens its devices, disks and sockets as root, then becomes that user.
  'SETUID',
  'SETGID',
  // Stop QEMU (a user's process by then) from an exec beside it.
  'KILL',
] as const;

/** Container names are global to the engine: suffix a hash of M5DEV_HOME so homes never collide. */
export function vmContainerName(instance: string, home: string): string {
  return `m5dev-${instance}-${createHash('sha256').update(home).digest('hex').slice(0, 6)}`;
}

/**
 * Create and start the VM container on its own network; SSH is published on 127.0.0.1 only. Its
 * removal is deferred on `scope`: until the operation keeps it (once the guest answers), a failure
 * or Ctrl-C removes it again; after that, nothing the command does later (a share that will not
 * mount, another instance of the same `up` that fails) takes the running guest away.
 */
export async function startVmContainer(docker: Docker, scope: CleanupScope, spec: VmContainerSpec): Promise<Docker.Container> {
  const portKey = `${spec.containerPort}/tcp`;
  // The network goes again with a failed launch (undone after the container, and deferred before
  // it is made, so a Ctrl-C while the engine makes it removes it too), unless a saved state waits on it.
  scope.defer(`network ${spec.instance}`, async () => {
    if (!(await spec.keepNetwork())) await removeNetwork(docker, spec.name);
  });
  await ensureInstanceNetwork(docker, spec.name, spec.home, spec.instance);
  const container = await docker.createContainer({
    name: spec.name,
    Image: spec.image,
    Cmd: spec.cmd,
    Labels: { ...baseLabels('vm', spec.home), [LABELS.instance]: spec.instance, [LABELS.sshPort]: String(spec.hostPort) },
    ExposedPorts: { [portKey]: {} },
    HostConfig: {
      Mounts: spec.binds.map(engineMount),
      ...(spec.tmpfs ? { Tmpfs: { [spec.tmpfs.path]: `size=${spec.tmpfs.sizeMiB}m,mode=0700` } } : {}),
      PortBindings: { [portKey]: [{ HostIp: '127.0.0.1', HostPort: String(spec.hostPort) }] },
      NetworkMode: spec.name,
      Devices: spec.kvm ? [{ PathOnHost: '/dev/kvm', PathInContainer: '/dev/kvm', CgroupPermissions: 'rwm' }] : [],
      CapDrop: ['ALL'],
      CapAdd: [...VM_CAPABILITIES],
      SecurityOpt: ['no-new-privileges'],
      Init: false,
    },
  }).catch((e: unknown) => {
    if ((e as { statusCode?: number }).statusCode === 409) {
      throw new M5devError(`A container named ${spec.name} already exists`, ExitCode.usage, `Remove it with \`docker rm -f ${spec.name}\` and retry.`);
    }
    throw e;
  });
  // From here until the guest answers, Ctrl-C or a failure removes the container again.
  // Kept, it is also spared the sweep of this session's containers when m5dev exits.
  scope.defer(`vm container ${spec.instance}`, () => forceRemove(docker, container.id), () => keepFromSweep(container.id));
  try {
    if (isInterrupting()) throw new InterruptedError(); // Ctrl-C arrived while the create call was in flight
    await container.start();
  } catch (e) {
    await forceRemove(docker, container.id);
    const msg = (e as Error).message ?? '';
    if (/port is already allocated|address already in use/i.test(msg)) throw new PortInUseError(spec.hostPort);
    throw e;
  }
  return container;
}

export interface VmContainerInfo {
  id: string;
  instance: string;
  state: string;
  status: string;
  sshPort: number;
}

export async function listVmContainers(docker: Docker, home: string, instance?: string): Promise<VmContainerInfo[]> {
  const label = [`${LABELS.role}=vm`, `${LABELS.home}=${home}`];
  if (instance) label.push(`${LABELS.instance}=${instance}`);
  const list = await docker.listContainers({ all: true, filters: { label } });
  return list.map((c) => ({
    id: c.Id,
    instance: c.Labels[LABELS.instance] ?? '?',
    state: c.State,
    status: c.Status,
    sshPort: Number(c.Labels[LABELS.sshPort] ?? 0),
  }));
}

/**
 * Remove the tool containers (a disk conversion, a kernel build) whose m5dev process on this host
 * died without its cleanups (kill -9, power loss): they would go on writing into files the next
 * command owns. Containers of live processes and of other machines are left alone. Returns how many.
 */
export async function sweepOrphanTools(docker: Docker): Promise<number> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${LABELS.role}=tool`, LABELS.client] } });
  let removed = 0;
  for (const c of list) {
    const client = c.Labels[LABELS.client] ?? '';
    if (client === CLIENT || clientAlive(client) !== false) continue;
    await forceRemove(docker, c.Id);
    removed++;
  }
  return removed;
}

export async function forceRemove(docker: Docker, id: string): Promise<void> {
  try {
    await docker.getContainer(id).remove({ force: true, v: true });
  } catch (e) {
    if (!isNotFound(e) && !/already in progress/.test((e as Error).message)) throw e;
  }
}

/** A container's description, or undefined when it is gone (404). An engine that stopped answering throws: that is not "the container exited". */
export async function inspectContainer(docker: Docker, id: string): Promise<Docker.ContainerInspectInfo | undefined> {
  try {
    return await docker.getContainer(id).inspect();
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

/** Wait up to `ms` for a container to stop running (or vanish); false on timeout. */
export async function waitExit(docker: Docker, id: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const info = await inspectContainer(docker, id);
    if (!info || !info.State.Running) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** The one way m5dev starts a command in a running container: its exec and the hijacked stream. */
async function startExec(docker: Docker, id: string, cmd: string[], opts: { stdin: boolean; env?: string[] }) {
  const exec = await docker.getContainer(id).exec({ Cmd: cmd, Env: opts.env, AttachStdin: opts.stdin, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: opts.stdin });
  return { exec, stream };
}

/** Its stdout into `out`, its stderr collected; resolves when the stream ends, with the exit code. */
function finishExec(docker: Docker, started: Awaited<ReturnType<typeof startExec>>, out: NodeJS.WritableStream): Promise<{ exitCode: number; stderr: string }> {
  const { exec, stream } = started;
  const err: Buffer[] = [];
  const errSink = new PassThrough().on('data', (c: Buffer) => err.push(c));
  docker.modem.demuxStream(stream, out, errSink);
  return new Promise<void>((resolve, reject) => {
    stream.on('end', () => resolve());
    stream.on('close', () => resolve());
    stream.on('error', reject);
  }).then(async () => {
    // A vanished exec (its container removed) ended with no code; a lost engine is not an exit code.
    const info = await exec.inspect().catch((e: unknown) => {
      if (isNotFound(e)) return undefined;
      throw e;
    });
    return { exitCode: info?.ExitCode ?? 1, stderr: Buffer.concat(err).toString('utf8') };
  });
}

/** Run a command in a running container, capturing output. */
export async function execCapture(docker: Docker, id: string, cmd: string[], opts: { env?: string[] } = {}): Promise<ExecResult> {
  const chunks: Buffer[] = [];
  const out = new PassThrough().on('data', (c: Buffer) => chunks.push(c));
  const { exitCode, stderr } = await finishExec(docker, await startExec(docker, id, cmd, { stdin: false, env: opts.env }), out);
  return { exitCode, stdout: Buffer.concat(chunks).toString('utf8'), stderr };
}

/** Run a command in a running container with `input` on its stdin and its stdout into `output` (a tar stream). */
export async function execPipe(docker: Docker, id: string, cmd: string[], io: { input?: NodeJS.ReadableStream; output?: NodeJS.WritableStream }): Promise<{ exitCode: number; stderr: string }> {
  const started = await startExec(docker, id, cmd, { stdin: io.input !== undefined });
  const done = finishExec(docker, started, io.output ?? new PassThrough().resume());
  if (io.input) io.input.pipe(started.stream); // ends the write side when the input ends
  const result = await done;
  if (io.output) io.output.end();
  return result;
}

/** A command in a running container as a byte channel: write its stdin, read its stdout; `done` when it exits. */
export interface ExecChannel {
  output: NodeJS.ReadableStream;
  /** Write to its stdin. */
  input: NodeJS.WritableStream;
  done: Promise<{ exitCode: number; stderr: string }>;
}

export async function execChannel(docker: Docker, id: string, cmd: string[]): Promise<ExecChannel> {
  const started = await startExec(docker, id, cmd, { stdin: true });
  const output = new PassThrough();
  const done = finishExec(docker, started, output).finally(() => output.end());
  return { output, input: started.stream, done };
}

/** Run a command in a running container wired to this process's stdio (TTY when stdin is one). */
export async function execInteractive(docker: Docker, id: string, cmd: string[]): Promise<number> {
  const tty = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  const exec = await docker.getContainer(id).exec({ Cmd: cmd, AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: tty });
  const stream = await exec.start({ hijack: true, stdin: true, Tty: tty });
  if (tty) {
    process.stdin.setRawMode(true);
    await exec.resize({ h: process.stdout.rows, w: process.stdout.columns }).catch(() => undefined);
    stream.pipe(process.stdout);
  } else {
    docker.modem.demuxStream(stream, process.stdout, process.stderr);
  }
  process.stdin.pipe(stream);
  await new Promise<void>((resolve) => stream.on('end', () => resolve()));
  process.stdin.unpipe(stream);
  if (tty) process.stdin.setRawMode(false);
  process.stdin.pause();
  const info = await exec.inspect();
  return info.ExitCode ?? 1;
}


/** A container that is created, never started: files go in and out of it by tar (`use` gets its id); removed after. */
export async function withIdleContainer<T>(docker: Docker, spec: { image: string; cmd: string[]; labels: Record<string, string>; mounts: Docker.MountSettings[] }, use: (id: string) => Promise<T>): Promise<T> {
  const c = await docker.createContainer({ Image: spec.image, Cmd: spec.cmd, Labels: spec.labels, HostConfig: { Mounts: spec.mounts, NetworkMode: 'none' } });
  try {
    return await use(c.id);
  } finally {
    await forceRemove(docker, c.id).catch(() => undefined);
  }
}

/**
 * Run a short container with no network to its end: its exit code and stdout; removed after. The
 * engine's refusal (a statusCode: a bind it cannot make, a device it has not) propagates.
 */
export async function runToEnd(docker: Docker, spec: { image: string; cmd: string[]; labels: Record<string, string>; mounts?: Docker.MountSettings[]; devices?: Docker.DeviceMapping[] }): Promise<{ statusCode: number; stdout: string }> {
  const c = await docker.createContainer({ Image: spec.image, Cmd: spec.cmd, Labels: spec.labels, HostConfig: { Mounts: spec.mounts ?? [], Devices: spec.devices, NetworkMode: 'none' } });
  try {
    await c.start();
    const { StatusCode } = (await c.wait()) as { StatusCode: number };
    return { statusCode: StatusCode, stdout: demuxBuffer(await c.logs({ stdout: true, stderr: false })) };
  } finally {
    await c.remove({ force: true }).catch(() => undefined);
  }
}

/** One running container's commands, files, console and end (the VM container's), bound to the engine's client. */
export interface ContainerHandle extends ContainerFiles {
  capture: (cmd: string[], opts?: { env?: string[] }) => Promise<ExecResult>;
  pipe: (cmd: string[], io: { input?: NodeJS.ReadableStream; output?: NodeJS.WritableStream }) => Promise<{ exitCode: number; stderr: string }>;
  channel: (cmd: string[]) => Promise<ExecChannel>;
  interactive: (cmd: string[]) => Promise<number>;
  logs: () => Promise<string>;
  isRunning: () => Promise<boolean>;
  waitExit: (ms: number) => Promise<boolean>;
  remove: () => Promise<void>;
}

export function containerHandle(docker: Docker, id: string): ContainerHandle {
  return {
    ...containerFiles(docker, id),
    capture: (cmd, opts) => execCapture(docker, id, cmd, opts),
    pipe: (cmd, io) => execPipe(docker, id, cmd, io),
    channel: (cmd) => execChannel(docker, id, cmd),
    interactive: (cmd) => execInteractive(docker, id, cmd),
    logs: () => containerLogs(docker, id),
    isRunning: async () => (await inspectContainer(docker, id))?.State.Running === true,
    waitExit: (ms) => waitExit(docker, id, ms),
    remove: () => forceRemove(docker, id),
  };
}

/** The engine's VM containers (Engine.containers): started, listed, handled; orphaned tools swept. */
export interface VmContainers {
  start: (scope: CleanupScope, spec: VmContainerSpec) => Promise<{ id: string }>;
  list: (home: string, instance?: string) => Promise<VmContainerInfo[]>;
  handle: (id: string) => ContainerHandle;
  sweepOrphanTools: () => Promise<number>;
  removeInstanceNetworks: (home: string, instance: string) => Promise<void>;
}

export function vmContainers(docker: Docker): VmContainers {
  return {
    start: async (scope, spec) => ({ id: (await startVmContainer(docker, scope, spec)).id }),
    list: (home, instance) => listVmContainers(docker, home, instance),
    handle: (id) => containerHandle(docker, id),
    sweepOrphanTools: () => sweepOrphanTools(docker),
    removeInstanceNetworks: (home, instance) => removeInstanceNetworks(docker, home, instance),
  };
}
