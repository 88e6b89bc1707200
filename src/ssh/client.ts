/**
 * Talk to the guest over SSH with the pinned host key: with the host's ssh when there is one,
 * else with the toolchain container's client (docker exec in the VM container).
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { accessSync, closeSync, constants, openSync } from 'node:fs';
import { basename, delimiter, join } from 'node:path';
import type { VmExec } from '../vmhost/vm-host.js';
import { GUEST_SSH_FORWARD } from '../vm/guest-access.js';
import { IN_CONTAINER, hostKeyAlias, type InstanceFiles } from '../vm/instance.js';
import { hostControlPath, sshCommand, type SshTarget } from './args.js';
import { privateControlDir } from './control-dir.js';
import { guestScript, type GuestCommand } from './guest-command.js';
import { scriptCommand } from '../scripts.js';
import { session } from '../session.js';

export type SshMode = 'host' | 'container';


export function findOnPath(cmd: string, env: Readonly<NodeJS.ProcessEnv> = session().env): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const full = join(dir, cmd);
    try {
      accessSync(full, constants.X_OK);
      return full;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** M5DEV_SSH=container forces the container's client; otherwise the host's ssh if present. */
export function chooseSshMode(env: Readonly<NodeJS.ProcessEnv> = session().env): SshMode {
  if (env.M5DEV_SSH === 'container') return 'container';
  if (env.M5DEV_SSH === 'host') return 'host';
  return findOnPath('ssh', env) ? 'host' : 'container';
}

export function hostTarget(files: InstanceFiles, name: string, port: number, proxyCommand?: string): SshTarget {
  return { alias: hostKeyAlias(name), port, identityFile: files.userKey, knownHostsFile: files.knownHosts, controlPath: hostControlPath(files.dir, privateControlDir()), proxyCommand };
}

export function containerTarget(name: string): SshTarget {
  return {
    alias: hostKeyAlias(name),
    port: GUEST_SSH_FORWARD,
    identityFile: IN_CONTAINER.userKey,
    knownHostsFile: IN_CONTAINER.knownHosts,
    controlPath: '/tmp/m5dev-ctl.ssh',
  };
}

export interface GuestResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** A command started before its input exists (GuestSsh.startFed). */
export interface FedCommand {
  feed: (data: Buffer | undefined) => void;
  result: Promise<GuestResult>;
}

interface SpawnedCapture {
  child: ChildProcess;
  result: Promise<GuestResult>;
  killAfter: (ms: number) => void;
}

export class GuestSsh {
  /** `vm` is needed only in container mode (ssh run beside QEMU, in the VM's container). */
  constructor(
    private readonly files: InstanceFiles,
    private readonly name: string,
    private readonly hostPort: number,
    readonly mode: SshMode = chooseSshMode(),
    private readonly vmExec?: VmExec,
    /** Host mode through an Engine API relay (an engine whose 127.0.0.1 is not ours). */
    private readonly proxyCommand?: string,
  ) {}

  private vm(): VmExec {
    if (!this.vmExec) throw new Error('container mode needs the VM container');
    return this.vmExec;
  }

  private command(remote: GuestCommand | undefined, opts: { batch: boolean; tty?: boolean; connectTimeoutSec?: number; reuse?: boolean }): string[] {
    const line = remote ? [remote.line] : [];
    // M5DEV_SSH_REUSE=no: a fresh connection (and host-key check) every time, no ControlMaster.
    if (!session().sshReuse) opts = { ...opts, reuse: false };
    return this.mode === 'host'
      ? sshCommand(hostTarget(this.files, this.name, this.hostPort, this.proxyCommand), line, opts)
      : sshCommand(containerTarget(this.name), line, opts);
  }

  /** Run a command and capture its output (readiness probes, module tests). */
  async capture(remote: GuestCommand, opts: { connectTimeoutSec?: number; reuse?: boolean; timeoutMs?: number } = {}): Promise<GuestResult> {
    const argv = this.command(remote, { batch: true, ...opts });
    if (this.mode === 'container') return this.vm().capture(argv);
    return this.spawnCapture(argv, 'ignore', opts.timeoutMs).result;
  }

  /**
   * Copy a host file to the guest (written to a temp name, then renamed).
   */
  upload(localPath: string, remotePath: string, mode = '0644'): Promise<GuestResult> {
    return this.captureFrom(localPath, guestScript('putFile', [remotePath, mode]));
  }

  /**
   * Run a command with a host file on its stdin, on the shared connection. In container mode the
   * file goes into the VM container first (a tar stream over the Engine API), then over its ssh.
   */
  async captureFrom(localPath: string, remote: GuestCommand, opts: { timeoutMs?: number } = {}): Promise<GuestResult> {
    if (this.mode === 'container') {
      return this.fromStaged(remote, `m5dev-upload-${basename(localPath)}`, async (dir, name) =>
        this.vm().putLocalFile(dir, localPath, name),
      );
    }
    const fd = openSync(localPath, 'r');
    try {
      return await this.spawnCapture(this.command(remote, { batch: true }), fd, opts.timeoutMs).result;
    } finally {
      closeSync(fd);
    }
  }

  /** Container mode: put the input in the VM container's /tmp, run the command there with it on stdin, remove it. */
  private async fromStaged(remote: GuestCommand, name: string, stage: (dir: string, name: string) => Promise<void>): Promise<GuestResult> {
    await stage('/tmp', name);
    const argv = this.command(remote, { batch: true });
    return this.vm().capture(scriptCommand('stdinFrom', [`/tmp/${name}`, ...argv]));
  }

  /**
   * Run a command with `input` on its stdin and its stdout into `output` (tar streams for `m5dev
   * cp`), on a connection of its own: a shared master would hold the pipes open.
   */
  async pipe(remote: GuestCommand, io: { input?: NodeJS.ReadableStream; output?: NodeJS.WritableStream }): Promise<{ exitCode: number; stderr: string }> {
    const argv = this.command(remote, { batch: true, reuse: false });
    if (this.mode === 'container') return this.vm().pipe(argv, io);
    const child = spawnArgv(argv, { stdio: [io.input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    const err: Buffer[] = [];
    piped(child.stderr, 'stderr').on('data', (c: Buffer) => err.push(c));
    if (io.input) {
      // ssh that exits early (a guest not up yet, a refused login) closes its stdin: EPIPE here is
      // not an error of ours, the exit code says what happened.
      piped(child.stdin, 'stdin').on('error', () => undefined);
      io.input.pipe(piped(child.stdin, 'stdin'));
    }
    if (io.output) piped(child.stdout, 'stdout').pipe(io.output);
    else piped(child.stdout, 'stdout').resume();
    const output = io.output;
    const written = output ? new Promise<void>((resolve, reject) => output.once('finish', resolve).once('error', reject)) : Promise.resolve();
    written.catch(() => undefined); // awaited only after a clean exit: a failed one's error is the exit code's, not an unhandled rejection
    const exitCode = await new Promise<number>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => resolve(code ?? (signal ? 255 : 1)));
    });
    if (exitCode === 0) await written;
    return { exitCode, stderr: Buffer.concat(err).toString('utf8') };
  }

  /**
   * Start a command now and give it its stdin later: `feed(data)` sends `data` and ends it, or
   * ends it empty (undefined) when there is nothing to send. What the command does before it
   * reads (the SSH round trip, sudo) overlaps whatever produces the data. The timeout runs from
   * the feed.
   */
  startFed(remote: GuestCommand, opts: { timeoutMs?: number } = {}): FedCommand {
    let feed!: (data: Buffer | undefined) => void;
    const input = new Promise<Buffer | undefined>((resolve) => {
      feed = resolve;
    });
    if (this.mode === 'container') {
      // docker exec cannot start before its input exists: wait for it, then send it as a file.
      const result = input.then(async (data) => {
        if (!data) return { exitCode: 1, stdout: '', stderr: 'no input' };
        return this.fromStaged(remote, `m5dev-input-${process.pid}-${Date.now()}`, async (dir, name) =>
          this.vm().putFiles(dir, [{ name, data, mode: 0o600 }]),
        );
      });
      return { feed, result };
    }
    const run = this.spawnCapture(this.command(remote, { batch: true }), 'pipe');
    piped(run.child.stdin, 'stdin').on('error', () => undefined); // the command may exit before it reads (a refused release)
    void input.then((data) => {
      if (opts.timeoutMs) run.killAfter(opts.timeoutMs);
      piped(run.child.stdin, 'stdin').end(data);
    });
    return { feed, result: run.result };
  }

  private spawnCapture(argv: string[], stdin: 'ignore' | 'pipe' | number, timeoutMs?: number): SpawnedCapture {
    const child = spawnArgv(argv, { stdio: [stdin, 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    piped(child.stdout, 'stdout').on('data', (c: Buffer) => out.push(c));
    piped(child.stderr, 'stderr').on('data', (c: Buffer) => err.push(c));
    let timer: NodeJS.Timeout | undefined;
    const killAfter = (ms: number) => {
      timer = setTimeout(() => child.kill('SIGKILL'), ms);
    };
    if (timeoutMs) killAfter(timeoutMs);
    const result = new Promise<GuestResult>((resolve, reject) => {
      child.on('error', reject);
      // 'exit' not 'close': a ControlPersist master inherits the pipes and keeps them open.
      child.on('exit', (code, signal) => {
        if (timer) clearTimeout(timer);
        setImmediate(() =>
          resolve({ exitCode: code ?? (signal ? 255 : 1), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }),
        );
      });
    });
    return { child, result, killAfter };
  }

  /** Run with this process's stdio (m5dev ssh / m5dev exec): returns the guest command's exit code. */
  async interactive(remote: GuestCommand | undefined): Promise<number> {
    const argv = this.command(remote, { batch: false, tty: remote === undefined && Boolean(process.stdin.isTTY) });
    if (this.mode === 'container') return this.vm().interactive(argv);
    return new Promise((resolve, reject) => {
      const child = spawnArgv(argv, { stdio: 'inherit' });
      child.on('error', reject);
      child.on('exit', (code, signal) => resolve(code ?? (signal ? 255 : 1)));
    });
  }
}


/** A child process from an argv (its first word the program). */
function spawnArgv(argv: string[], options: SpawnOptions): ChildProcess {
  const [program, ...args] = argv;
  if (program === undefined) throw new Error('an empty command line');
  return spawn(program, args, options);
}

/** A stdio stream spawned as a pipe (a bug of ours if it is not). */
function piped<T>(stream: T | null, which: string): T {
  if (stream === null) throw new Error(`the child's ${which} is not a pipe`);
  return stream;
}
