/**
 * The figures of docs/benchmarks.md as charts (`make docs`): SVG drawn from the recorded data in
 * docs/data/, never from numbers typed by hand.
 * - docs/data/test-runs/*.json: a `make test` run's phases, each read from its log's "make test:
 *   PHASE (N s; …)" lines (`node dist-bench/bench/charts.js add-run LOG LABEL` records one).
 * - docs/data/bench/*.json: a `make bench` run's rows (bench/run.ts writes one per run).
 * Out: docs/charts/test-runs.svg (each run by phase) and docs/charts/bench-<group>.svg (each row,
 * this against what it is compared with).
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export interface TestRun {
  label: string;
  /** Each phase and when it ended, on make test's clock (seconds). */
  phases: { phase: string; endSec: number }[];
}

export interface BenchRow {
  group: string;
  what: string;
  ms: number;
  vs?: { label: string; ms: number };
  unit: 'ms' | 'MiB';
}

/** Pure: the phases a `make test` log reports, in order. */
export function parsePhases(log: string): TestRun['phases'] {
  const out: TestRun['phases'] = [];
  // eslint-disable-next-line no-control-regex
  for (const m of log.replace(/\u001b\[[0-9;]*m/g, '').matchAll(/^make test: (.+?) \((\d+) s;/gm)) out.push({ phase: m[1] ?? '', endSec: Number(m[2]) });
  return out;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const COLOURS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

function svg(width: number, height: number, body: string[]): string {
  return [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`, `<rect width="${width}" height="${height}" fill="#ffffff"/>`, ...body, '</svg>', ''].join('\n');
}

/** Pure: each run a bar from 0 to its end, one segment per phase (the time since the phase before), with a legend. */
export function testRunsChart(runs: TestRun[]): string {
  const phases = [...new Set(runs.flatMap((r) => r.phases.map((p) => p.phase)))];
  const max = Math.max(1, ...runs.flatMap((r) => r.phases.map((p) => p.endSec)));
  const left = 230;
  const plot = 520;
  const rowH = 26;
  const top = 30;
  const body: string[] = [`<text x="10" y="18" font-weight="bold">make test by phase (minutes, make test's clock)</text>`];
  runs.forEach((r, i) => {
    const y = top + i * rowH;
    body.push(`<text x="10" y="${y + 15}">${esc(r.label)}</text>`);
    let from = 0;
    for (const p of r.phases) {
      const w = ((p.endSec - from) / max) * plot;
      if (w > 0) body.push(`<rect x="${(left + (from / max) * plot).toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${COLOURS[phases.indexOf(p.phase) % COLOURS.length]}"><title>${esc(`${p.phase}: ${from} → ${p.endSec} s`)}</title></rect>`);
      from = Math.max(from, p.endSec);
    }
    body.push(`<text x="${(left + (from / max) * plot + 6).toFixed(1)}" y="${y + 15}">${(from / 60).toFixed(1)} min</text>`);
  });
  const legendTop = top + runs.length * rowH + 12;
  phases.forEach((p, i) => {
    const y = legendTop + i * 18;
    body.push(`<rect x="${left}" y="${y}" width="12" height="12" fill="${COLOURS[i % COLOURS.length]}"/>`, `<text x="${left + 18}" y="${y + 10}">${esc(p)}</text>`);
  });
  return svg(left + plot + 80, legendTop + phases.length * 18 + 10, body);
}

/** Pure: a bench group's rows, each as two bars (this, and what it is compared with), on one scale per unit. */
export function benchChart(title: string, rows: BenchRow[]): string {
  const maxOf = (unit: BenchRow['unit']) => Math.max(1, ...rows.filter((r) => r.unit === unit).flatMap((r) => [r.ms, r.vs?.ms ?? 0]));
  const show = (v: number, unit: BenchRow['unit']) => (unit === 'MiB' ? `${v.toFixed(0)} MiB` : v >= 1000 ? `${(v / 1000).toFixed(1)} s` : v >= 1 ? `${v.toFixed(0)} ms` : `${(v * 1000).toFixed(0)} µs`);
  const left = 10;
  const plot = 600;
  const body: string[] = [`<text x="10" y="18" font-weight="bold">${esc(title)}</text>`];
  let y = 34;
  for (const r of rows) {
    const max = maxOf(r.unit);
    body.push(`<text x="${left}" y="${y + 10}">${esc(r.what)}</text>`);
    y += 16;
    for (const [label, v, colour] of [['this', r.ms, COLOURS[0]], [r.vs?.label, r.vs?.ms, COLOURS[1]]] as const) {
      if (v === undefined || label === undefined) continue;
      const w = (v / max) * plot;
      body.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="14" fill="${colour}"><title>${esc(`${label}: ${show(v, r.unit)}`)}</title></rect>`, `<text x="${(left + w + 6).toFixed(1)}" y="${y + 11}">${esc(`${show(v, r.unit)}${label === 'this' ? '' : `: ${label}`}`)}</text>`);
      y += 18;
    }
    y += 10;
  }
  return svg(left + plot + 420, y + 6, body);
}

const readJson = <T>(dir: string): { name: string; value: T }[] =>
  existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => ({ name: f, value: JSON.parse(readFileSync(join(dir, f), 'utf8')) as T })) : [];

/** Every chart from docs/data into docs/charts (the files it wrote, in order). */
export function renderCharts(docs: string): string[] {
  const out = join(docs, 'charts');
  mkdirSync(out, { recursive: true });
  const written: string[] = [];
  const runs = readJson<TestRun>(join(docs, 'data', 'test-runs')).map((r) => r.value);
  if (runs.length) {
    writeFileSync(join(out, 'test-runs.svg'), testRunsChart(runs));
    written.push('test-runs.svg');
  }
  for (const { value } of readJson<{ date: string; rows: BenchRow[] }>(join(docs, 'data', 'bench'))) {
    for (const group of [...new Set(value.rows.map((r) => r.group))]) {
      const name = `bench-${group.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}.svg`;
      writeFileSync(join(out, name), benchChart(`${group} (make bench, ${value.date})`, value.rows.filter((r) => r.group === group)));
      written.push(name);
    }
  }
  return written;
}

const main = (): void => {
  const [cmd, ...args] = process.argv.slice(2);
  const docs = resolve(import.meta.dirname ?? '.', '..', '..', 'docs');
  if (cmd === 'add-run') {
    const [log, label] = args;
    if (!log || !label) throw new Error('usage: charts.js add-run LOG LABEL');
    const run: TestRun = { label, phases: parsePhases(readFileSync(log, 'utf8')) };
    if (run.phases.length === 0) throw new Error(`${log} has no "make test:" phase lines`);
    const dir = join(docs, 'data', 'test-runs');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${label.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase()}.json`), `${JSON.stringify(run, null, 2)}\n`);
    return;
  }
  for (const f of renderCharts(docs)) process.stdout.write(`docs/charts/${f}\n`);
};

if (process.argv[1]?.endsWith('charts.js')) main();
