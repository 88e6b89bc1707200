/**
 * The VM-host driver: where a guest's QEMU runs and how m5dev reaches it. Workflows see only this
 * interface: what the host can do (`features`), launching a VM, finding the one an instance has,
 * and a `RunningVm` to talk to (exec, QMP, console, stop, remove). The one implementation runs QEMU
 * in a container of the Docker engine (docker-vm-host.ts); tests drive workflows' rules with fakes.
 */
import type { CleanupScope } from '../cleanup.js';
import type { ContainerFiles, ExecChannel, ExecResult } from '../docker/containers.js';
import type { Mount } from '../docker/mounts.js';
import type { QmpClient, QmpFd } from '../vm/qmp.js';

export interface VmHostFeatures {
  /** The host sees the client's files at the same paths (bind mounts of the client's dirs, shares). */
  seesClientFiles: boolean;
  /**
   * A port the host publishes on its 127.0.0.1 is this client's 127.0.0.1: SSH goes direct, and a
   * port is free when it is free here. Otherwise the host itself decides (a remote engine).
   */
  loopbackIsClients: boolean;
}

/** What the host is (asked of it once, when a launch needs it). */
export interface VmHostPlatform {
  /** The host's CPU architecture (x86_64, aarch64): KVM needs aarch64. */
  arch: string;
  /** Its root is the client user (a rootless engine): files it writes need no chown. */
  rootless: boolean;
}

/**
 * Running commands beside the guest's QEMU (in its container): what SSH in container mode and the
 * relays need; files in and out as a tool container's are (ContainerFiles).
 */
export interface VmExec extends ContainerFiles {
  capture(cmd: string[], opts?: { env?: string[] }): Promise<ExecResult>;
  pipe(cmd: string[], io: { input?: NodeJS.ReadableStream; output?: NodeJS.WritableStream }): Promise<{ exitCode: number; stderr: string }>;
  /** A byte channel to a command (a socket relay). */
  channel(cmd: string[]): Promise<ExecChannel>;
  interactive(cmd: string[]): Promise<number>;
}

export interface RunningVm extends VmExec {
  readonly id: string;
  readonly instance: string;
  /** The host port that reaches the guest's SSH forward. */
  readonly sshPort: number;
  /** A QMP session (negotiated) on the monitor socket, holding `fds` for QEMU's `getfd`; close it when done. */
  monitor(timeoutSec: number, fds?: QmpFd[]): Promise<QmpClient>;
  /** QEMU's console output so far (the container's log). */
  console(): Promise<string>;
  /** Whether QEMU still runs. */
  isRunning(): Promise<boolean>;
  /** Wait up to `ms` for QEMU to exit; false on timeout. */
  waitExit(ms: number): Promise<boolean>;
  /** Stop and remove it now (idempotent). */
  remove(): Promise<void>;
}

/** A VM the host knows of (running or not). */
export interface VmEntry {
  id: string;
  instance: string;
  running: boolean;
  status: string;
  sshPort: number;
}

export interface VmLaunch {
  instance: string;
  image: string;
  /** QEMU's command line (or a wrapper that execs it). */
  cmd: string[];
  mounts: Mount[];
  /** The host port published on 127.0.0.1 for the guest's SSH forward, and that forward's port. */
  sshPort: number;
  guestSshForward: number;
  kvm: boolean;
  /** A tmpfs of the VM's own, gone with it (the RAM file). */
  tmpfs?: { path: string; sizeMiB: number };
  /** After a failed launch: whether the instance still needs what the host keeps for it (a saved state waits to be resumed). */
  stillNeeded: () => Promise<boolean>;
}

export interface VmHost {
  readonly features: VmHostFeatures;
  platform(): Promise<VmHostPlatform>;
  /** Whether a VM of `image` can use KVM here (an arm64 host with /dev/kvm it can hand over). */
  kvmUsable(image: string): Promise<boolean>;
  /**
   * Start a VM; its removal is deferred on `scope`: when the operation ends (a failure, Ctrl-C)
   * before it keeps what it made (`scope.keep()`, once the guest answers), the VM goes again;
   * after that, nothing later in the command takes the guest away.
   * A published port that is taken raises PortInUseError.
   */
  launch(spec: VmLaunch, scope: CleanupScope): Promise<RunningVm>;
  /** The VMs of this home (of one instance), running or not. */
  list(instance?: string): Promise<VmEntry[]>;
  /** The instance's running VM, if any. */
  running(instance: string): Promise<RunningVm | undefined>;
  /** A handle on a VM the host lists (to remove a stopped one, or reach a running one). */
  attach(entry: VmEntry): RunningVm;
  /**
   * Remove the one-shot tool containers (a disk conversion, a kernel build) whose m5dev process died
   * without its cleanups (kill -9): they would go on writing into files the next command owns.
   */
  sweepOrphans(): Promise<number>;
  /** Remove what the host keeps for an instance besides its VM (its network): `m5dev down` of an instance with no saved state, and `destroy`. */
  forget(instance: string): Promise<void>;
}
