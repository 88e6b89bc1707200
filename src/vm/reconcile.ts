/**
 * `up`'s first decision, pure: from the instance as it is (its state, a live VM, a saved guest) and
 * what was asked (config, with which keys were given explicitly), what this up does with it:
 * attach to the running guest, resume the suspended one, boot, or refuse, and with which config.
 * Whether a saved guest still fits its disk and machine is decided later, at launch (saved-state.ts).
 */
import { UsageError } from '../errors.js';
import type { VmConfig } from '../config.js';
import type { InstanceState } from './instance.js';
import { sameShares } from './shares.js';

export interface Observed {
  name: string;
  state: InstanceState | undefined;
  /** A VM container of the instance is running. */
  live: boolean;
  /** A saved guest's record is there. */
  suspended: boolean;
  /** The kernel release --kernel resolved to (undefined: the image's own kernel, or none asked). */
  kernelRelease: string | undefined;
  /** Which disk kinds the instance's storage holds. */
  disks: ReadonlySet<VmConfig['disk']>;
}

export interface Asked {
  config: VmConfig;
  explicit: ReadonlySet<keyof VmConfig>;
  noResume: boolean;
}

export type Plan =
  | { kind: 'attach'; config: VmConfig }
  | { kind: 'resume'; config: VmConfig; /** The kernel the guest was saved running, when --kernel did not name one. */ kernelVersion?: string }
  | { kind: 'boot'; config: VmConfig; fresh: boolean }
  | { kind: 'refuse'; error: UsageError };

const stopFirst = (name: string) => `Stop it first: \`m5dev down${name === 'default' ? '' : ` --name ${name}`}\`, then run up again`;

export function reconcile(o: Observed, a: Asked): Plan {
  const { name, state } = o;
  let config = a.config;
  // An existing instance keeps its disk kind unless --disk asks for another one, which needs its old disk gone.
  if (state && !a.explicit.has('disk')) config = { ...config, disk: state.disk };
  if (state && state.disk !== config.disk && o.disks.has(state.disk)) {
    return { kind: 'refuse', error: new UsageError(`instance ${name} was created with --disk ${state.disk}`, `Run \`m5dev destroy --name ${name}\` first to change the disk kind.`) };
  }
  if (o.live) {
    if (state?.kernel !== o.kernelRelease) {
      const now = state?.kernel ? `kernel ${state.kernel}` : "the image's own kernel";
      return { kind: 'refuse', error: new UsageError(`instance ${name} is running ${now}`, `${stopFirst(name)}.`) };
    }
    if (a.explicit.has('shares') && !sameShares(config.shares, state?.shares)) {
      return { kind: 'refuse', error: new UsageError(`instance ${name} is running with other shares`, `${stopFirst(name)} with the shares you want (a suspended guest resumes with the shares it had).`) };
    }
    const m5opsChanged =
      (a.explicit.has('m5opsAddr') && config.m5opsAddr !== state?.m5ops?.addr) ||
      (a.explicit.has('m5opsExit') && config.m5opsExit !== state?.m5ops?.exit) ||
      (a.explicit.has('m5opsStats') && config.m5opsStats !== (state?.m5ops?.stats ?? 'clock')) ||
      (a.explicit.has('m5opsParams') && JSON.stringify(config.m5opsParams) !== JSON.stringify(state?.m5ops?.params ?? [])) ||
      (a.explicit.has('m5opsCheckpoints') && config.m5opsCheckpoints !== (state?.m5ops?.checkpoints ?? false));
    if (m5opsChanged) {
      return { kind: 'refuse', error: new UsageError(`instance ${name} is running with another m5ops device`, `${stopFirst(name)} with --m5ops-addr/--m5ops-exit/--m5ops-stats/--m5ops-param/--m5ops-checkpoints (a readfile can change on a running guest: \`m5dev m5ops readfile FILE\`).`) };
    }
    return { kind: 'attach', config: { ...config, shares: state?.shares ?? [] } };
  }
  const resuming = state !== undefined && o.suspended && !a.noResume;
  // A suspended instance resumes as it was: what the command line leaves out comes from it.
  if (resuming) config = { ...config, ...suspendedSettings(state, a.explicit) };
  if (resuming) return { kind: 'resume', config, kernelVersion: o.kernelRelease === undefined ? state.kernelVersion : undefined };
  return { kind: 'boot', config, fresh: state === undefined };
}

/** The machine settings a suspended instance was saved with, for those not given explicitly. */
export function suspendedSettings(state: InstanceState, explicit: ReadonlySet<keyof VmConfig>): Partial<VmConfig> {
  const keep: Partial<VmConfig> = {};
  if (!explicit.has('cpus')) keep.cpus = state.cpus;
  if (!explicit.has('memoryMiB')) keep.memoryMiB = state.memoryMiB;
  if (!explicit.has('cpu') && state.cpu) keep.cpu = state.cpu;
  if (!explicit.has('accel') && (state.accel === 'kvm' || state.accel === 'tcg')) keep.accel = state.accel;
  if (!explicit.has('ramFile')) keep.ramFile = state.ramFile === true;
  if (!explicit.has('tcgCacheMiB') && state.tcgCacheMiB) keep.tcgCacheMiB = state.tcgCacheMiB;
  if (!explicit.has('shares')) keep.shares = state.shares ?? [];
  if (!explicit.has('m5opsAddr') && state.m5ops) keep.m5opsAddr = state.m5ops.addr;
  if (!explicit.has('m5opsExit') && state.m5ops) keep.m5opsExit = state.m5ops.exit;
  if (!explicit.has('m5opsStats') && state.m5ops) keep.m5opsStats = state.m5ops.stats ?? 'clock';
  if (!explicit.has('m5opsParams') && state.m5ops) keep.m5opsParams = state.m5ops.params ?? [];
  if (!explicit.has('m5opsCheckpoints') && state.m5ops) keep.m5opsCheckpoints = state.m5ops.checkpoints ?? false;
  return keep;
}
