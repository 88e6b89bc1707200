import { describe, expect, it } from 'vitest';
import { parseStats } from '../../src/m5ops/stats.js';

/** Two blocks as the plugin writes them (its format string), the second with instruction counts. */
const line = (name: string, value: string, desc: string, unit: string) => `${name.padEnd(40)} ${value.padStart(20)}                       # ${desc} (${unit})`;
const sample = [
  '',
  '---------- Begin Simulation Statistics ----------',
  line('simSeconds', '0.501234', 'Number of seconds simulated', 'Second'),
  line('simTicks', '501234000000', 'Number of ticks simulated', 'Tick'),
  line('simFreq', '1000000000000', 'The number of ticks per simulated second', 'Tick/Second'),
  line('hostSeconds', '0.52', 'Real time elapsed on the host', 'Second'),
  '',
  '---------- End Simulation Statistics   ----------',
  '',
  '---------- Begin Simulation Statistics ----------',
  line('simSeconds', '0.000100', 'Number of seconds simulated', 'Second'),
  line('simInsts', '123456', 'Number of instructions simulated', 'Count'),
  '',
  '---------- End Simulation Statistics   ----------',
  '',
].join('\n');

describe("gem5's stats.txt", () => {
  it('reads each block of stats, by name', () => {
    const blocks = parseStats(sample);
    expect(blocks).toHaveLength(2);
    expect(blocks[0]).toEqual({ simSeconds: 0.501234, simTicks: 501234000000, simFreq: 1e12, hostSeconds: 0.52 });
    expect(blocks[1]).toEqual({ simSeconds: 0.0001, simInsts: 123456 });
  });

  it("reads gem5's own lines too (value, then distribution columns, then the comment)", () => {
    const gem5 = '---------- Begin Simulation Statistics ----------\nsimSeconds                                   0.000043                       # Number of seconds simulated (Second)\nsystem.cpu.numCycles                          86000                       # Number of cpu cycles simulated (Cycle)\n---------- End Simulation Statistics   ----------\n';
    expect(parseStats(gem5)).toEqual([{ simSeconds: 0.000043, 'system.cpu.numCycles': 86000 }]);
  });

  it('refuses what is not that format', () => {
    expect(() => parseStats('---------- Begin Simulation Statistics ----------\nsimSeconds oops\n---------- End Simulation Statistics   ----------\n')).toThrow(/line 2: not a stat line/);
    expect(() => parseStats('---------- Begin Simulation Statistics ----------\n')).toThrow(/does not end/);
    expect(() => parseStats('---------- End Simulation Statistics   ----------\n')).toThrow(/did not begin/);
    expect(parseStats('')).toEqual([]);
    // Each error names its line (1-based), a block inside another too.
    const begin = '---------- Begin Simulation Statistics ----------';
    expect(() => parseStats(`${begin}\n${begin}\n`)).toThrow(/^stats\.txt line 2: a block begins inside another$/);
    expect(() => parseStats('\n\n---------- End Simulation Statistics   ----------\n')).toThrow(/^stats\.txt line 3: a block ends that did not begin$/);
    // Lines as a file may hold them: indented, with a carriage return.
    expect(parseStats(`  ${begin}  \r\n   simSeconds 0.5 # s (Second)\r\n---------- End Simulation Statistics   ----------\r\n`)).toEqual([{ simSeconds: 0.5 }]);
  });
});
