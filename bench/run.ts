/**
 * m5dev benchmarks (`make bench`): every figure is a median of several runs, measured side by side
 * in this one run on this machine, and printed as a Markdown table with ratios.
 *
 * The groups are a registry (GROUPS below, one file each in groups/), run in its order. Each says
 * what it needs (a built kernel, an older m5dev to compare with: skipped, with the reason, without
 * them) and whether it works on the shared bench instance or makes its own; the runner provides
 * that instance before the first group that needs it and removes it before one that makes its own.
 * A figure one group compares with another's is passed in `ctx.figures`, not by order alone.
 *
 * Env: M5DEV_FIXTURE_DIR (fixture image dir, set by make), BENCH_RUNS (default 3), BENCH_ONLY (e.g. A,D),
 * BENCH_HOME (default the kernel tests' persistent home, so the built kernel is reused),
 * BENCH_BASE_CLI (an older m5dev's dist/cli/main.js: groups C, G and H compare with it).
 */
import { spawnSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { HOME, NAME, PORT, ROOT, RUNS, builtKernel, fixtureImage, m5dev, must, rows, show } from './lib.js';
import type { BenchCtx, BenchGroup, Need } from './group.js';
import { GROUPS } from './groups/index.js';

/** BENCH_ONLY=A,D: run only these groups (their ids). */
const ONLY = process.env.BENCH_ONLY?.toUpperCase().split(',');

function missing(group: BenchGroup, ctx: BenchCtx): Need | undefined {
  return group.needs.find((n) => (n === 'kernel' ? !ctx.kernel : !ctx.base));
}

const WHY: Record<Need, string> = { kernel: 'no kernel built in the bench home (m5dev kernel build)', base: 'BENCH_BASE_CLI is not set' };

async function main(): Promise<void> {
  const ctx: BenchCtx = {
    image: fixtureImage(),
    kernel: builtKernel(),
    base: process.env.BENCH_BASE_CLI ? resolve(process.env.BENCH_BASE_CLI) : undefined,
    figures: {},
  };
  process.stderr.write(`bench: ${RUNS} runs each, home ${HOME}, kernel ${ctx.kernel ?? '(none built: groups that need one are skipped)'}\n`);
  let benchInstance = false;
  for (const group of GROUPS) {
    if (ONLY && !ONLY.includes(group.id)) continue;
    const need = missing(group, ctx);
    if (need) {
      process.stderr.write(`bench: ${group.id} skipped: ${WHY[need]}\n`);
      continue;
    }
    if (group.guest === 'bench' && !benchInstance) {
      await m5dev(['destroy', '--name', NAME]);
      await must(['up', '--name', NAME, '--image-url', ctx.image.url, '--image-sha256', ctx.image.sha256, '--disk', 'overlay', '--ssh-port', String(PORT)]);
      benchInstance = true;
    }
    if (group.guest === 'own' && benchInstance) {
      await must(['destroy', '--name', NAME]);
      benchInstance = false;
    }
    process.stderr.write(`bench: ${group.id}. ${group.title}\n`);
    await group.run(ctx);
  }
  if (benchInstance) await must(['destroy', '--name', NAME]);

  const lines = [
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; guest under TCG.`,
    `Medians of ${RUNS} runs unless noted; ratio = first column ÷ comparison.`,
    '',
    '| group | measurement | median | compared with | median | ratio |',
    '|---|---|---:|---|---:|---:|',
    ...rows.map((r) => `| ${r.group} | ${r.what} | ${show(r.ms, r.unit)} | ${r.vs?.label ?? ''} | ${r.vs ? show(r.vs.ms, r.unit) : ''} | ${r.vs && r.vs.ms > 0 ? `${(r.ms / r.vs.ms).toFixed(2)}×` : ''} |`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  // The run's rows as data, for the charts `make docs` draws (bench/charts.ts); kept when the run is recorded in docs/benchmarks.md.
  const dir = join(ROOT, 'docs', 'data', 'bench');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString().slice(0, 10), runs: RUNS, machine: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`, rows }, null, 2)}\n`);
  process.stderr.write(`bench: rows written to ${file}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${(e as Error).message}\n`);
  spawnSync('sh', ['-c', 'docker rm -f $(docker ps -aq --filter label=dev.m5dev.bench=true) 2>/dev/null'], { stdio: 'ignore' });
  process.exit(1);
});
