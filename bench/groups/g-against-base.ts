import { CLI, NAME, PORT, RUNS, median, must, record, settled, upToShell } from '../lib.js';
import type { BenchCtx, BenchGroup } from '../group.js';

/** Group G: alternate this CLI and the base one on the same running guest; medians of each. */
async function againstBase(base: string): Promise<void> {
  const pair = async (what: string, runs: number, args: (cli: string) => string[]) => {
    const mine: number[] = [];
    const theirs: number[] = [];
    for (let i = 0; i < runs; i++) {
      mine.push((await must(args(CLI), {}, undefined, CLI)).ms);
      theirs.push((await must(args(base), {}, undefined, base)).ms);
    }
    record('local engine vs base', what, median(mine), { label: 'base (BENCH_BASE_CLI)', ms: median(theirs) });
  };
  await upToShell([]);
  await settled();
  await must(['exec', '--name', NAME, '--', 'true']);
  await pair('exec true, reused SSH connection', 10, () => ['exec', '--name', NAME, '--', 'true']);
  await pair('status', 5, () => ['status']);
  await pair('up of a running instance', 5, () => ['up', '--name', NAME, '--ssh-port', String(PORT)]);
  const mine: number[] = [];
  const theirs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    for (const [cli, into] of [[CLI, mine], [base, theirs]] as const) {
      await must(['suspend', '--name', NAME], {}, undefined, cli);
      into.push((await must(['up', '--name', NAME, '--ssh-port', String(PORT)], {}, undefined, cli)).ms);
    }
  }
  record('local engine vs base', 'up → SSH, resuming a suspended guest', median(mine), { label: 'base (BENCH_BASE_CLI)', ms: median(theirs) });
}

export const againstBaseGroup: BenchGroup = {
  id: 'G',
  title: 'this checkout against an older m5dev (BENCH_BASE_CLI) on the local engine, alternating on one running guest: exec true, status, up of a running instance, suspend → resume',
  needs: ['base'],
  guest: 'own',
  async run(ctx: BenchCtx) {
    await must(['up', '--name', NAME, '--image-url', ctx.image.url, '--image-sha256', ctx.image.sha256, '--disk', 'overlay', '--ssh-port', String(PORT)]);
    await againstBase(ctx.base!);
    await must(['destroy', '--name', NAME]);
  },
};
