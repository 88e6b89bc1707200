/** The charts of docs/benchmarks.md (issue 38): drawn from recorded data by `make docs`, never by hand. */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchChart, parsePhases, renderCharts, testRunsChart } from '../../bench/charts.js';
import { ROOT } from '../helpers/cli.js';

describe('charts from recorded runs', () => {
  it("reads a make test log's phases (colours and other lines ignored)", () => {
    const log = 'noise\n\u001b[2mmake test: built and linted (36 s; cores 73% busy since the start, 73% since the line before)\u001b[0m\n[guests-a] make test: not this\nmake test: guest lanes done (1584 s; cores 75% busy)\nmake test: a guest lane failed (its lines are marked)\n';
    expect(parsePhases(log)).toEqual([
      { phase: 'built and linted', endSec: 36 },
      { phase: 'guest lanes done', endSec: 1584 },
    ]);
  });
  it('draws each run by phase and each bench row against its comparison, as well-formed SVG on one scale', () => {
    const runs = testRunsChart([{ label: 'a <run>', phases: [{ phase: 'one', endSec: 60 }, { phase: 'two', endSec: 120 }] }, { label: 'b', phases: [{ phase: 'one', endSec: 30 }] }]);
    expect(runs).toContain('<text x="10" y="45">a &lt;run&gt;</text>');
    expect(runs).toMatch(/<rect x="230\.0" y="30" width="260\.0"[^>]*><title>one: 0 → 60 s<\/title>/);
    expect(runs).toMatch(/<rect x="490\.0" y="30" width="260\.0"[^>]*><title>two: 60 → 120 s<\/title>/);
    expect(runs).toContain('>2.0 min</text>');
    const bench = benchChart('g', [{ group: 'g', what: 'w', ms: 500, vs: { label: 'v', ms: 2000 }, unit: 'ms' }]);
    expect(bench).toMatch(/width="150\.0" height="14"[^>]*><title>this: 500 ms/);
    expect(bench).toMatch(/width="600\.0" height="14"[^>]*><title>v: 2\.0 s/);
    const dir = mkdtempSync(join(tmpdir(), 'm5dev-charts-'));
    for (const [n, text] of [['runs.svg', runs], ['bench.svg', bench]] as const) {
      execFileSync('sh', ['-c', `cat > "${join(dir, n)}"`], { input: text });
      execFileSync('xmllint', ['--noout', join(dir, n)]);
    }
  });
  it('the committed charts are the ones make docs draws from the committed data', () => {
    const docs = mkdtempSync(join(tmpdir(), 'm5dev-docs-'));
    cpSync(join(ROOT, 'docs', 'data'), join(docs, 'data'), { recursive: true });
    const written = renderCharts(docs);
    expect(written.sort()).toEqual(readdirSync(join(ROOT, 'docs', 'charts')).sort());
    for (const f of written) expect(readFileSync(join(docs, 'charts', f), 'utf8'), f).toBe(readFileSync(join(ROOT, 'docs', 'charts', f), 'utf8'));
  });
});
