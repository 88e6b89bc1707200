/** B. No-op overheads on a guest that has finished booting. */
import { NAME, execTrue, must, record, sample, settled, upToShell } from '../lib.js';
import type { BenchGroup } from '../group.js';

export const noOp: BenchGroup = {
  id: 'B',
  title: 'no-op overheads: cached image build, status, exec true with and without a reused SSH connection (a guest that has finished booting)',
  needs: [],
  guest: 'bench',
  async run() {
    await upToShell([]);
    await settled();
    const image = await sample(5, async () => (await must(['image', 'build'])).ms);
    record('no-op overhead', 'image build, cached', image);
    const status = await sample(5, async () => (await must(['status'])).ms);
    record('no-op overhead', 'status', status);
    const execFresh = await sample(5, async () => (await must(['exec', '--name', NAME, '--', 'true'], { M5DEV_SSH_REUSE: 'no' })).ms);
    const execReuse = await execTrue('UEFI guest');
    record('no-op overhead', 'exec true, UEFI guest', execReuse, { label: 'new connection each time', ms: execFresh });
  },
};
