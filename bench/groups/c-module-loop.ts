/** C. The module loop: edit → rebuilt → loaded in the guest. */
import { rmSync } from 'node:fs';
import { CLI, NAME, RUNS, execTrue, median, must, record, sample, settled, upToShell, moduleCopy, editModule } from '../lib.js';
import type { BenchCtx, BenchGroup } from '../group.js';

export const moduleLoop: BenchGroup = {
  id: 'C',
  title: 'module edit → rebuilt → loaded in the guest (with BENCH_BASE_CLI, alternating with the base)',
  needs: ['kernel'],
  guest: 'bench',
  async run(ctx: BenchCtx) {
    await upToShell(['--kernel', ctx.kernel!]);
    const src = moduleCopy('m5dev-bench-module-');
    await must(['module', 'load', '--name', NAME, '--src', src]);
    await settled();
    await execTrue('direct-boot guest');
    const edit = () => editModule(src);
    const edited = await sample(RUNS, async () => {
      edit();
      return (await must(['module', 'load', '--name', NAME, '--src', src])).ms;
    });
    const cached = await sample(RUNS, async () => (await must(['module', 'load', '--name', NAME, '--src', src])).ms);
    record('module loop', 'edit m5.c → rebuilt → loaded in the guest', edited, { label: 'reload unchanged (build cached)', ms: cached });
    // With a base: the same edit → load loop, alternating this checkout and the base.
    if (ctx.base) {
      const mine: number[] = [];
      const theirs: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        for (const [cli, into] of [[CLI, mine], [ctx.base, theirs]] as const) {
          edit();
          into.push((await must(['module', 'load', '--name', NAME, '--src', src], {}, undefined, cli)).ms);
        }
      }
      record('module loop', 'edit m5.c → rebuilt → loaded in the guest', median(mine), { label: 'base (BENCH_BASE_CLI)', ms: median(theirs) });
    }
    rmSync(src, { recursive: true, force: true });
  },
};
