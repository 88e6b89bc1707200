/** m5ops' pure parts: the op log, waiting for an exit, the base address, the QEMU argument. */
import { describe, expect, it } from 'vitest';
import { describeEvent, isExit, lastExit, M5OPS, parseLog, type M5opEvent } from '../../src/m5ops/ops.js';
import { firstUnreturned, latestRun, waitForExit, type WaitCursor } from '../../src/workflows/m5ops.js';
import { parseConfig, parseM5opsAddr, resolveConfig } from '../../src/config.js';
import { M5opsError, UsageError } from '../../src/errors.js';

const ev = (op: string, extra: Partial<M5opEvent> = {}): M5opEvent => ({ time: 1_700_000_000_000, vclockNs: 5, vcpu: 0, func: 0, op, args: [], result: '0x0', ...extra });

describe('the op log', () => {
  it('reads JSON lines, skipping a torn last line and foreign lines', () => {
    const text = `${JSON.stringify(ev('start', { func: -1 }))}\n${JSON.stringify(ev('fail', { func: 0x22, code: 7 }))}\nnot json\n{"time":1,"func":`;
    const events = parseLog(text);
    expect(events.map((e) => e.op)).toEqual(['start', 'fail']);
    expect(lastExit(events)).toMatchObject({ op: 'fail', code: 7 });
    expect(isExit(ev('dump_stats'))).toBe(false);
    // A writefile the host could not complete ends the run with code 1; a complete one is no exit.
    expect(isExit(ev('write_file', { code: 1, note: 'm5out is full' }))).toBe(true);
    expect(isExit(ev('write_file', { file: 'a' }))).toBe(false);
    expect(isExit(ev('exit'))).toBe(false);
    expect(describeEvent(ev('exit', { args: ['0x0'], code: 0 }))).toBe('2023-11-14T22:13:20.000Z vcpu0 exit(0x0) = 0x0  [code 0]');
    // No arguments, no extras; a file and a note joined; guest text shown, not sent.
    expect(describeEvent(ev('dump_stats'))).toBe('2023-11-14T22:13:20.000Z vcpu0 dump_stats() = 0x0');
    expect(describeEvent(ev('write_file', { args: ['0x1', '0x2'], vcpu: 1, file: 'a\u001bb', note: 'm5out is full', code: 1 }))).toBe('2023-11-14T22:13:20.000Z vcpu1 write_file(0x1, 0x2) = 0x0  [code 1; file a\\x1bb; m5out is full]');
    // Lines that are JSON but not an op (no func number, no op name), blank lines between.
    const mixed = ['', JSON.stringify({ func: 3 }), JSON.stringify({ op: 'exit' }), '   ', JSON.stringify(ev('exit', { func: 0x21, code: 0 })), ''].join('\n');
    expect(parseLog(mixed).map((e) => e.op)).toEqual(['exit']);
    // An exit needs its code; the last of several is the latest.
    expect(isExit(ev('fail', { code: 0 }))).toBe(true);
    expect(isExit(ev('panic'))).toBe(false);
    expect(lastExit([ev('exit', { code: 0 }), ev('dump_stats'), ev('fail', { code: 3 }), ev('dump_stats')])).toMatchObject({ op: 'fail', code: 3 });
    expect(lastExit([ev('dump_stats')])).toBeUndefined();
  });

  it("names gem5's ops by number (m5ops.h)", () => {
    expect([M5OPS[0x21], M5OPS[0x22], M5OPS[0x23], M5OPS[0x4f], M5OPS[0x50], M5OPS[0x71]]).toEqual(['exit', 'fail', 'sum', 'write_file', 'read_file', 'hypercall']);
  });
});

describe('waitForExit', () => {
  const source = (runs: M5opEvent[][], alive: boolean[], cursor?: WaitCursor) => {
    let i = 0;
    const advanced: WaitCursor[] = [];
    return {
      advanced,
      read: async () => runs[Math.min(i, runs.length - 1)]!,
      alive: async () => {
        const a = alive[Math.min(i, alive.length - 1)]!;
        i++;
        return a;
      },
      cursor: async () => cursor,
      advance: async (c: WaitCursor) => {
        advanced.push(c);
        cursor = c;
      },
    };
  };
  const start = (time: number) => ev('start', { time });

  it('returns an exit that came before the wait, once: the next wait returns the one after it (no race with the job)', async () => {
    const run = [start(1), ev('fail', { code: 1 }), ev('exit', { code: 0 })];
    const src = source([run], [true]);
    let waited = false;
    expect(await waitForExit(src, 5000, { pollMs: 1, onWaiting: () => (waited = true) })).toMatchObject({ op: 'fail', code: 1 });
    expect(waited).toBe(false);
    expect(await waitForExit(src, 5000, { pollMs: 1 })).toMatchObject({ op: 'exit', code: 0 });
    expect(src.advanced).toEqual([{ launch: 1, returned: 1 }, { launch: 1, returned: 2 }]);
    // Nothing left: it waits (and says so), then times out.
    const err = await waitForExit(src, 20, { pollMs: 5, onWaiting: () => (waited = true) }).catch((e: unknown) => e);
    expect((err as M5opsError).exitCode).toBe(19);
    expect(waited).toBe(true);
  });

  it('a cursor of another launch counts for nothing; the exits of earlier launches are not this one\'s', async () => {
    const run = [start(1), ev('fail', { code: 9 }), start(2), ev('fail', { code: 3 }), ev('fail', { code: 4 })];
    expect(await waitForExit(source([run], [true], { launch: 1, returned: 1 }), 1000, { pollMs: 1 })).toMatchObject({ code: 3 });
    expect(await waitForExit(source([run], [true], { launch: 2, returned: 1 }), 1000, { pollMs: 1 })).toMatchObject({ code: 4 });
  });

  it('--new: only an exit after the call; a launch that starts while it waits is followed from its start', async () => {
    const old = [start(1), ev('fail', { code: 1 })];
    expect(await waitForExit(source([old, old, [...old, ev('exit', { code: 0 })]], [true]), 5000, { future: true, pollMs: 1 })).toMatchObject({ op: 'exit', code: 0 });
    const relaunched = [...old, start(5), ev('fail', { code: 6 })];
    const src = source([old, relaunched], [true], { launch: 1, returned: 1 });
    expect(await waitForExit(src, 5000, { pollMs: 1 })).toMatchObject({ code: 6 });
    expect(src.advanced).toEqual([{ launch: 5, returned: 1 }]);
  });

  it('a VM that already stopped: its first exit no wait returned; none left: an error that says so', async () => {
    const run = [start(1), ev('fail', { code: 9 }), start(2), ev('fail', { code: 3 }), ev('exit', { code: 0 })];
    expect(await waitForExit(source([run], [false]), 1000, { pollMs: 1 })).toMatchObject({ code: 3 });
    await expect(waitForExit(source([[ev('fail', { code: 3 }), start(4)]], [false]), 1000, { pollMs: 1 })).rejects.toThrow(/stopped without an m5 exit/);
    await expect(waitForExit(source([run], [false], { launch: 2, returned: 2 }), 1000, { pollMs: 1 })).rejects.toThrow(/its 2 m5 exit\/fail record\(s\) were returned by earlier waits/);
  });

  it('the latest run and where a wait starts in it', () => {
    expect(latestRun([ev('exit', { code: 0 })])).toMatchObject({ launch: 0, exits: [{ op: 'exit' }] });
    expect(latestRun([start(3), ev('dump_stats'), ev('panic', { code: 134 })]).exits.map((e) => e.op)).toEqual(['panic']);
    expect(firstUnreturned(3, { launch: 3, returned: 2 })).toBe(2);
    expect(firstUnreturned(3, { launch: 4, returned: 2 })).toBe(0);
    expect(firstUnreturned(3, undefined)).toBe(0);
  });
});

describe('m5ops settings', () => {
  const bad = (w: string) => new UsageError(w);
  it("takes gem5's base and other 64 KiB-aligned bases in virt's PCIe MMIO window only", () => {
    expect(parseM5opsAddr('0x10010000', bad)).toBe(0x10010000);
    expect(parseM5opsAddr(0x20000000, bad)).toBe(0x20000000);
    for (const v of ['0x10010800', '0x40000000', '0x09000000', '0x3eff0000', 'x', -1]) expect(() => parseM5opsAddr(v, bad)).toThrow(/64 KiB-aligned address from 0x10000000/);
  });

  it('defaults: gem5\'s base, exit recorded only; m5dev.json paths are relative to the file', () => {
    expect(resolveConfig({}, {})).toMatchObject({ m5opsAddr: 0x10010000, m5opsExit: 'continue' });
    expect(parseConfig({ m5opsExit: 'poweroff', m5opsReadfile: 'job.sh', m5opsAddr: '0x10020000' }, 'm5dev.json', '/proj')).toEqual({ m5opsExit: 'poweroff', m5opsReadfile: '/proj/job.sh', m5opsAddr: 0x10020000 });
    expect(() => parseConfig({ m5opsExit: 'halt' }, 'x')).toThrow(/"continue" or "poweroff"/);
    // Stats: the clocks by default; instruction counting is asked for, and reaches the plugin's arguments.
    expect(resolveConfig({}, {}).m5opsStats).toBe('clock');
    expect(parseConfig({ m5opsStats: 'insns' }, 'x')).toEqual({ m5opsStats: 'insns' });
    expect(() => parseConfig({ m5opsStats: 'cycles' }, 'x')).toThrow(/"clock" or "insns"/);
    expect(resolveConfig({}, {}).m5opsParams).toEqual([]);
    expect(parseConfig({ m5opsParams: ['size=4', '=0x2'] }, 'x')).toEqual({ m5opsParams: [{ key: 'size', value: '4' }, { key: '', value: '2' }] });
    expect(() => parseConfig({ m5opsParams: 'size=4' }, 'x')).toThrow(/KEY=VALUE/);
    expect(() => parseConfig({ m5opsParams: ['size'] }, 'x')).toThrow(/KEY=VALUE/);
  });
});

describe('guest text and codes on the host', () => {
  it('control characters are shown, not sent to the terminal; a failure never exits 0', async () => {
    const { exitStatus } = await import('../../src/m5ops/ops.js');
    const { printable, terminalText } = await import('../../src/terminal-text.js');
    expect(printable('a\u001b[2Jb\nc')).toBe('a\\x1b[2Jb\\x0ac');
    // The console and error details: lines, tabs and colour stay; OSC 52 (a clipboard write), screen
    // clears, a lone carriage return (hides what came before it) and C1 controls are shown, not sent.
    expect(terminalText('ok\r\n\t\u001b[0;32m OK \u001b[0m\n')).toBe('ok\r\n\t\u001b[0;32m OK \u001b[0m\n');
    expect(terminalText('\u001b]52;c;ZXZpbA==\u0007x')).toBe('\\x1b]52;c;ZXZpbA==\\x07x');
    expect(terminalText('a\u001b[2J\rb\u009bc')).toBe('a\\x1b[2J\\x0db\\x9bc');
    expect([exitStatus(0), exitStatus(7), exitStatus(256), exitStatus(-1), exitStatus(300)]).toEqual([0, 7, 1, 255, 44]);
  });
});
