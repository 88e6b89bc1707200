/** Small file operations in the VM's container, as QEMU there sees its files. */
import { VmStateError } from '../errors.js';
import type { VmExec } from './vm-host.js';

/** Remove a file (gone already is fine); a failure is an error, since callers rely on it being gone. */
export async function removeInVm(vm: VmExec, path: string): Promise<void> {
  const r = await vm.capture(['rm', '-f', '--', path]);
  if (r.exitCode !== 0) throw new VmStateError(`could not remove ${path} in the VM's container`, r.stderr.trim());
}
