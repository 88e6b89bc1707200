/** D. Suspend and resume, with the RAM file (default) and without; and what each costs while the guest runs. */
import { plainSshTrue, record, settled, suspendResume, upToShell, writtenWhileIdle } from '../lib.js';
import type { BenchCtx, BenchGroup } from '../group.js';

export const suspendResumeGroup: BenchGroup = {
  id: 'D',
  title: 'suspend, and m5dev up resuming the suspended guest, against a cold boot; the RAM file vs RAM in the stream; host disk writes and SSH answer time while the guest runs',
  needs: [],
  guest: 'bench',
  async run(ctx: BenchCtx) {
    const cold = await upToShell(['--no-ram-file']);
    await settled();
    const anonWrites = await writtenWhileIdle();
    const anonSsh = await plainSshTrue();
    const stream = await suspendResume();
    await upToShell(['--ram-file']);
    await settled();
    const fileWrites = await writtenWhileIdle();
    const fileSsh = await plainSshTrue();
    const file = await suspendResume();
    record('time to a shell', 'm5dev up → SSH, resuming a suspended guest (default: RAM file in the container tmpfs)', file.resume, { label: 'cold boot (UEFI + GRUB)', ms: ctx.figures.uefiBoot ?? cold });
    record('time to a shell', 'm5dev up → SSH, resuming, --no-ram-file (RAM in the saved stream)', stream.resume, { label: 'default', ms: file.resume });
    record('time to a shell', 'm5dev suspend (devices saved, RAM file copied out, stop)', file.suspend);
    record('time to a shell', 'm5dev suspend, --no-ram-file (RAM + devices saved, stop)', stream.suspend, { label: 'default', ms: file.suspend });
    if (fileWrites !== undefined && anonWrites !== undefined) {
      record('running cost', 'host disk writes while the guest idles 30 s (1 sample), default', fileWrites, { label: '--no-ram-file', ms: anonWrites }, 'MiB');
    }
    record('running cost', 'plain ssh true on the shared connection (no m5dev), default', fileSsh, { label: '--no-ram-file', ms: anonSsh });
  },
};
