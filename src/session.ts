/**
 * The environment one m5dev command runs in, read once: the only module that reads process.env.
 * cli/program.ts starts it (the global --toolchain joins it); `ssh-proxy` points it at an
 * instance's home and engine. Below the CLI, functions take what they need as parameters whose
 * default is the session's, so tests give them values instead of setting variables.
 */
export interface Session {
  /** The variables as the command found them, with the session's changes: M5DEV_HOME, DOCKER_HOST, XDG_*, PATH, GITHUB_ACTIONS… */
  readonly env: Readonly<NodeJS.ProcessEnv>;
  /** `--toolchain REF` or M5DEV_TOOLCHAIN: that image as it is, not one built here. */
  readonly toolchain?: string;
  /** M5DEV_STRICT_LOCK=1: a toolchain build fails rather than install a version the lock does not name. */
  readonly strictLock: boolean;
  /** M5DEV_SSH_REUSE=no: a fresh SSH connection (and host-key check) every time, no ControlMaster. */
  readonly sshReuse: boolean;
  /** M5DEV_DEBUG: a bug's stack trace is printed. */
  readonly debug: boolean;
  /** M5DEV_TIMINGS=1: each progress step shows its time. */
  readonly timings: boolean;
}

/** A session of these variables (tests build their own). */
export function sessionOf(env: Readonly<NodeJS.ProcessEnv>): Session {
  return {
    env,
    toolchain: env.M5DEV_TOOLCHAIN || undefined,
    strictLock: env.M5DEV_STRICT_LOCK === '1',
    sshReuse: env.M5DEV_SSH_REUSE !== 'no',
    debug: Boolean(env.M5DEV_DEBUG),
    timings: env.M5DEV_TIMINGS === '1',
  };
}

let current: Session | undefined;

/** This command's session (made from the process's environment on first use). */
export function session(): Session {
  current ??= sessionOf({ ...process.env });
  return current;
}

/** The session with `vars` set (a flag that stands for a variable; an instance's home and engine). */
export function updateSession(vars: Record<string, string>): Session {
  current = sessionOf({ ...session().env, ...vars });
  return current;
}

/** Make `s` this process's session (a test's own). */
export function startSession(s: Session): void {
  current = s;
}
