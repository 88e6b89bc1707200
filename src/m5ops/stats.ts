/**
 * gem5's stats.txt, as the m5ops plugin appends it (docker/m5ops/m5ops.c, dump_stats): blocks
 * between "Begin Simulation Statistics" and "End Simulation Statistics" marks, one stat a line
 * (`name value # description (unit)`). Pure.
 */
export type StatsBlock = Record<string, number>;

const BEGIN = /^-+ Begin Simulation Statistics -+$/;
const END = /^-+ End Simulation Statistics\s+-+$/;
const LINE = /^(\S+)\s+(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?|nan|inf)\s+(?:\S+\s+)*#\s.*$/;

/** The blocks of a stats.txt, in order; a line inside a block that is not a stat line is an error. */
export function parseStats(text: string): StatsBlock[] {
  const blocks: StatsBlock[] = [];
  let open: StatsBlock | undefined;
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (BEGIN.test(line)) {
      if (open) throw new Error(`stats.txt line ${i + 1}: a block begins inside another`);
      open = {};
    } else if (END.test(line)) {
      if (!open) throw new Error(`stats.txt line ${i + 1}: a block ends that did not begin`);
      blocks.push(open);
      open = undefined;
    } else if (line && open) {
      const m = LINE.exec(line);
      if (!m) throw new Error(`stats.txt line ${i + 1}: not a stat line: ${JSON.stringify(line)}`);
      open[m[1] ?? ''] = Number(m[2]);
    }
  }
  if (open) throw new Error('stats.txt: the last block does not end');
  return blocks;
}
