/**
 * Typed errors for every expected failure. Each carries a distinct exit code and a hint that
 * tells the user what to do next; the CLI prints message + hint, never a stack trace.
 */
export const ExitCode = {
  ok: 0,
  unexpected: 1,
  usage: 2,
  dockerUnavailable: 3,
  imageBuildFailed: 4,
  downloadFailed: 5,
  checksumMismatch: 6,
  portInUse: 7,
  bootFailed: 8,
  instanceNotFound: 9,
  toolFailed: 10,
  kernelBuildFailed: 11,
  moduleFailed: 12,
  vmStateFailed: 13,
  doctorFailed: 14,
  busy: 15,
  diskFull: 16,
  copyFailed: 17,
  shareFailed: 18,
  m5opsFailed: 19,
  engineHostKey: 20,
  networkUnavailable: 21,
  untrustedConfig: 22,
  jobTimedOut: 23,
  m5BuildFailed: 24,
  interrupted: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export class M5devError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue,
    readonly hint?: string,
    readonly details?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class UsageError extends M5devError {
  constructor(message: string, hint = 'Run `m5dev --help` for usage.') {
    super(message, ExitCode.usage, hint);
  }
}

export class DockerUnavailableError extends M5devError {
  constructor(cause: string) {
    super(
      `Cannot reach the Docker engine: ${cause}`,
      ExitCode.dockerUnavailable,
      'Start Docker (e.g. `sudo dockerd &` or `systemctl start docker`), or point DOCKER_HOST at a running engine.',
    );
  }
}

/** An ssh:// engine's host showed a key that is not on record (unknown, changed or revoked). */
export class EngineHostKeyError extends M5devError {
  constructor(message: string, hint: string) {
    super(message, ExitCode.engineHostKey, hint);
  }

  static of(v: 'unknown' | 'changed' | 'revoked', name: string, url: URL): EngineHostKeyError {
    const login = `ssh${url.port && url.port !== '22' ? ` -p ${url.port}` : ''} ${url.username ? `${url.username}@` : ''}${url.hostname} true`;
    if (v === 'unknown') return new EngineHostKeyError(`the SSH host key of the engine host ${name} is not in known_hosts: m5dev does not talk to an engine it cannot authenticate`, `Connect once with \`${login}\` and check the fingerprint it shows (the docker CLI needs this too), then run m5dev again.`);
    if (v === 'revoked') return new EngineHostKeyError(`the engine host ${name} showed an SSH host key marked @revoked in known_hosts`, 'Do not use this host until its keys are replaced.');
    return new EngineHostKeyError(`the engine host ${name} showed an SSH host key that differs from the one in known_hosts: someone may be in the middle, or the host was reinstalled`, `Find out which; if the host's key really changed, \`ssh-keygen -R '${name}'\` and connect once with \`${login}\`.`);
  }
}

/** The engine answered at first, then stopped answering (stopped, restarted, network gone). */
export class EngineLostError extends M5devError {
  constructor(cause: string) {
    super(
      `Lost the Docker engine during the command (${cause})`,
      ExitCode.dockerUnavailable,
      'Nothing made so far is lost: the instance\'s files stay where they were (on the engine\'s volumes, or here). When the engine answers again, run the command again; `m5dev status` shows what runs.',
    );
  }
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOENT']);

/** An error from talking to the engine that means it went away (dockerode passes the socket's error on), else undefined. */
export function engineLost(e: unknown): EngineLostError | undefined {
  if (e instanceof M5devError) return undefined;
  const err = e as NodeJS.ErrnoException & { syscall?: string; address?: string };
  const socketError = typeof err?.code === 'string' && CONNECTION_CODES.has(err.code) && (err.syscall === 'connect' || err.syscall === 'read' || err.syscall === 'write' || err.address !== undefined);
  if (socketError) return new EngineLostError(err.code ?? 'connection lost');
  if (/socket hang up/.test(err?.message ?? '')) return new EngineLostError('socket hang up');
  return undefined;
}

/** The engine could not give the instance's VM container a network of its own (its address pools are all in use). */
export class NetworkUnavailableError extends M5devError {
  constructor(cause: string) {
    super(
      `The engine has no free address range for the instance's network (${cause})`,
      ExitCode.networkUnavailable,
      'Each running or suspended instance has a bridge network of its own, and Docker\'s default address pools hold about 30. Remove networks nothing uses (`docker network prune`; `m5dev down` and `destroy` remove their instance\'s), or give the engine more pools (`default-address-pools` in daemon.json), then run `m5dev up` again.',
    );
  }
}

/** The engine's answer when no address pool is left for a new bridge network (Docker before and after its new allocator; Podman). */
export function isPoolExhausted(message: string): boolean {
  return /non-overlapping IPv4 address pool|address pools have been fully subnetted|could not find .*(free|available) subnet|subnet.*exhausted/i.test(message);
}

export class ImageBuildError extends M5devError {
  constructor(message: string, logTail: string, hint = 'Fix the failing step in docker/Dockerfile, then run `m5dev image build` again.') {
    super(message, ExitCode.imageBuildFailed, hint, logTail);
  }
}

export class DownloadError extends M5devError {
  constructor(message: string, hint = 'Check the URL and your network, then run the command again: it continues from the bytes already fetched (nothing unverified is ever used).') {
    super(message, ExitCode.downloadFailed, hint);
  }
}

export class ChecksumMismatchError extends M5devError {
  constructor(
    readonly url: string,
    readonly expected: string,
    readonly actual: string,
    hint = 'The file was discarded. Check --image-sha256 / the mirror\'s SHA256SUMS; never bypass the check.',
  ) {
    super(`SHA-256 mismatch for ${url}: expected ${expected}, got ${actual}`, ExitCode.checksumMismatch, hint);
  }
}

export class PortInUseError extends M5devError {
  constructor(readonly port: number) {
    super(
      `127.0.0.1:${port} is already in use`,
      ExitCode.portInUse,
      `Pick another port with --ssh-port, or stop whatever listens on ${port} (\`m5dev status\` lists running instances).`,
    );
  }
}

export class BootError extends M5devError {
  constructor(message: string, consoleTail: string, hint = 'Read the full console with `m5dev logs`; `m5dev destroy` resets the instance.') {
    super(message, ExitCode.bootFailed, hint, consoleTail);
  }
}

export class InstanceNotFoundError extends M5devError {
  constructor(name: string, state = 'does not exist') {
    super(`Instance "${name}" ${state}`, ExitCode.instanceNotFound, `${state === 'is suspended' ? 'Resume' : 'Start'} it with \`m5dev up${name === 'default' ? '' : ` --name ${name}`}\`.`);
  }
}

export class ToolError extends M5devError {
  constructor(message: string, output: string, hint = 'This is a step inside the toolchain container; rebuild it with `m5dev image build` and retry.') {
    super(message, ExitCode.toolFailed, hint, output);
  }
}

/**
 * The error of a tool step that exited non-zero (a tool container, or a step beside QEMU): a full
 * disk is a DiskFullError wherever it happened; else the step's own typed error, or a ToolError.
 */
export function toolStepError(run: { description: string; failure?: (message: string, outputTail: string) => Error }, exitCode: number, output: string): Error {
  const message = `${run.description} failed (exit ${exitCode})`;
  if (isDiskFull(output)) return new DiskFullError(`running ${run.description}`, undefined, tail(output, 8));
  return run.failure ? run.failure(message, tail(output, 25)) : new ToolError(message, tail(output, 25));
}

export class KernelBuildError extends M5devError {
  constructor(message: string, logTail: string, hint = 'See the build log tail above; fix the config fragment or the source and retry.') {
    super(message, ExitCode.kernelBuildFailed, hint, logTail);
  }
}

export class ModuleError extends M5devError {
  constructor(message: string, output: string, hint = 'See the output above; `m5dev exec -- sudo dmesg | tail` shows the guest kernel log.') {
    super(message, ExitCode.moduleFailed, hint, output);
  }
}

export class VmStateError extends M5devError {
  constructor(message: string, details = '', hint = 'The guest keeps running (or boots afresh on the next `m5dev up`); `m5dev logs` shows its console.') {
    super(message, ExitCode.vmStateFailed, hint, details || undefined);
  }
}

export class InterruptedError extends M5devError {
  constructor() {
    super('Interrupted; cleaned up containers and partial files.', ExitCode.interrupted);
  }
}

/** `m5dev cp` could not copy (a missing or unwritable path on either side). */
export class CopyError extends M5devError {
  constructor(message: string, details: string, hint = 'Check the paths (the guest side runs as the guest user `ubuntu`: root-owned places need a path it can write).') {
    super(message, ExitCode.copyFailed, hint, details.trim() || undefined);
  }
}

/** A host directory could not be shared into the guest (`up --share`, m5dev.json "shares"). */
export class ShareError extends M5devError {
  constructor(message: string, hint: string, details?: string) {
    super(message, ExitCode.shareFailed, hint, details);
  }
}

/** A repository's m5dev.json sets what chooses code the host runs, and the command line did not trust it. */
export class UntrustedConfigError extends M5devError {
  constructor(file: string, settings: string[]) {
    super(
      `${file} sets ${settings.map((k) => `"${k}"`).join(', ')}, which choose${settings.length === 1 ? 's' : ''} code this machine runs or boots: a cloned repository's m5dev.json may not, and nothing was run`,
      ExitCode.untrustedConfig,
      `Read what it names; to use it, say so on the command line: \`m5dev up --trust-config ${settings.join(',')}\` (or give the value itself as a flag, or put it in your own $M5DEV_HOME/config.json).`,
    );
  }
}

/** Another m5dev process holds the instance or cache entry, and `--no-wait` was given. */
export class BusyError extends M5devError {
  constructor(what: string, holder: string) {
    super(
      `${what} is in use by ${holder}`,
      ExitCode.busy,
      'Wait for that command to finish (without --no-wait, m5dev waits for it), or stop it; the lock of an m5dev that died is taken over at once.',
    );
  }
}

/** A write ran out of space; whatever existed before the command is untouched. */
export class DiskFullError extends M5devError {
  constructor(what: string, where = DISK_WHERE, details?: string) {
    super(
      `No space left on the device while ${what}`,
      ExitCode.diskFull,
      `Free space in ${where} (\`m5dev doctor\` shows how much is free), then run the command again. What existed before this command is as it was: the instance disk, a saved state and the finished caches.`,
      details,
    );
  }
}

const DISK_WHERE = 'the m5dev home (M5DEV_HOME) or, for a remote engine, the engine\'s disk';

/** Output of a failed write that ran out of space (ENOSPC from a tool, QEMU or the kernel build). */
export function isDiskFull(text: string): boolean {
  return /No space left on device|ENOSPC|Disk quota exceeded/i.test(text);
}

/** Keep the last `lines` lines of a text (for log tails in errors). */
export function tail(text: string, lines = 20): string {
  const all = text.replace(/\s+$/, '').split('\n');
  return all.slice(Math.max(0, all.length - lines)).join('\n');
}

/** An m5ops command that could not do what it was asked (no exit before the timeout, a VM that stopped without one). */
export class M5opsError extends M5devError {
  constructor(message: string, hint?: string, details?: string) {
    super(message, ExitCode.m5opsFailed, hint, details);
  }
}

/** `m5dev run`: the job did not end (its guest's fail, or its Nth exit) within --timeout. */
export class JobTimeoutError extends M5devError {
  constructor(message: string, hint?: string) {
    super(message, ExitCode.jobTimedOut, hint);
  }
}

/** `m5dev m5 install --gem5`: gem5's util/m5 did not build (SCons' words are the details). */
export class M5BuildError extends M5devError {
  constructor(message: string, output: string, hint = 'See SCons\' output above: the tree\'s util/m5 must build for arm64 as `scons build/arm64/out/m5` does (gem5-resources\' images build it so).') {
    super(message, ExitCode.m5BuildFailed, hint, output);
  }
}
