/**
 * `up --from-checkpoint NAME:K --name NEW`: a new instance made of an `up` instance's checkpoint: its
 * state as it was then (machine, kernel, shares, m5ops device), its SSH keys (the guest knows only
 * those; the host key is pinned under the new name), its firmware and seed, and the checkpoint's
 * memory, disk and UEFI variables, committed as a suspended guest whose launch restores it only into
 * the same machine (the checkpoint's portable key). `up` then resumes it as any suspended instance.
 * Made whole or not at all: a failure removes what was made.
 */
import { copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../../errors.js';
import { cleanupScope } from '../../cleanup.js';
import { instanceDir, type HomeLayout } from '../../paths.js';
import { hostKeyAlias, instanceRecord, openInstance, STORED, type InstanceState } from '../../vm/instance.js';
import { knownHostsLine } from '../../vm/cloud-config.js';
import { KEY_FILES } from '../../vm/prepare.js';
import { commitCopied } from '../../vm/saved-state.js';
import { placeInstance } from '../../vmhost/placement.js';
import { copyCheckpointIn, findCheckpoint, type CheckpointRef } from '../checkpoint.js';
import type { Toolchain } from '../image-build.js';
import type { Reporter } from '../report.js';

/** Make instance `name` of checkpoint `ref`; returns what its launch must match. */
export function instanceFromCheckpoint(report: Reporter, toolchain: Toolchain, home: HomeLayout, ref: CheckpointRef, name: string): Promise<{ portableKey: string }> {
  return report.step(`Instance ${name} from checkpoint ${ref.name}:${ref.index}`, async (s) => {
    if (ref.name === name) throw new UsageError(`--from-checkpoint ${ref.name}:${ref.index} makes a new instance`, 'Give it a --name of its own.');
    if (existsSync(instanceDir(home, name))) throw new UsageError(`instance ${name} exists`, `--from-checkpoint makes a new instance: choose another --name, or \`m5dev destroy --name ${name}\` first.`);
    const source = await findCheckpoint(toolchain, home, ref, 'up');
    const was = source.record.instance;
    if (!was) throw new UsageError(`checkpoint ${ref.name}:${ref.index} holds no instance state`, `Restore it with \`m5dev run --from-checkpoint ${ref.name}:${ref.index}\`.`);
    const from = openInstance(home, ref.name);
    const files = openInstance(home, name, true);
    await using scope = cleanupScope(`instance ${name} from a checkpoint`);
    scope.defer(`instance ${name}`, () => rmSync(files.dir, { recursive: true, force: true }));
    for (const f of KEY_FILES) copyFileSync(join(from.dir, f), join(files.dir, f));
    const known = knownHostsLine(hostKeyAlias(name), readFileSync(`${files.hostKey}.pub`, 'utf8'));
    writeFileSync(files.knownHosts, known, { mode: 0o600 });
    const state: InstanceState = { ...was, name, createdAt: new Date().toISOString(), launchKey: undefined, portableKey: undefined };
    const placement = await placeInstance(toolchain.engine, home, files, name, state, () => toolchain.tag);
    scope.defer(`the storage of instance ${name}`, () => placement.storage.destroy());
    await placement.storage.ensure();
    // An engine that cannot see this machine's files keeps its own copy of the keys (ssh from beside QEMU).
    if (!placement.storage.clientPath(STORED.userKey)) {
      await placement.storage.write([...KEY_FILES.map((f) => ({ name: f, data: readFileSync(join(files.dir, f)), mode: f.endsWith('.pub') ? 0o644 : 0o600 })), { name: STORED.knownHosts, data: known, mode: 0o600 }]);
    }
    const saved = await copyCheckpointIn(toolchain, home, source, placement.storage, placement.owner, [STORED.flash0, STORED.seed]);
    await commitCopied(placement.storage, saved);
    instanceRecord.fromCheckpoint(files, state);
    scope.keep();
    s.title(`Instance ${name} from checkpoint ${ref.name}:${ref.index} (taken ${source.record.takenAt}, guest clock ${(source.record.vclockNs / 1e9).toFixed(3)} s)`);
    return { portableKey: source.record.portableKey };
  });
}
