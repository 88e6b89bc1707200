/** Choose accelerator, CPU model and machine type: the seed's two variants, pure. */
import { UsageError } from '../errors.js';

export type Accel = 'kvm' | 'tcg';

export interface MachineChoice {
  accel: Accel;
  cpu: string;
  machine: string;
}

export interface MachineInputs {
  requested: 'auto' | 'kvm' | 'tcg';
  /** process.arch of the Docker host (the engine's architecture). */
  hostArch: string;
  /** /dev/kvm exists and opens read-write. */
  kvmUsable: boolean;
  cpuOverride?: string;
}

export function chooseMachine(i: MachineInputs): MachineChoice {
  const sameArch = i.hostArch === 'arm64' || i.hostArch === 'aarch64';
  let accel: Accel;
  if (i.requested === 'kvm') {
    if (!sameArch) throw new UsageError(`--accel kvm needs an arm64 host; this Docker host is ${i.hostArch}`, 'Use --accel tcg (or auto).');
    if (!i.kvmUsable) throw new UsageError('--accel kvm: /dev/kvm is missing or not accessible', 'Check permissions on /dev/kvm, or use --accel tcg.');
    accel = 'kvm';
  } else if (i.requested === 'tcg') {
    accel = 'tcg';
  } else {
    accel = sameArch && i.kvmUsable ? 'kvm' : 'tcg';
  }
  // The seed: `-cpu host -M virt,gic-version=3 --enable-kvm` on arm64+KVM, else `-M virt -cpu cortex-a57`.
  return accel === 'kvm'
    ? { accel, cpu: i.cpuOverride ?? 'host', machine: 'virt,gic-version=3' }
    : { accel, cpu: i.cpuOverride ?? 'cortex-a57', machine: 'virt' };
}
