/**
 * The m5ops m5dev's QEMU answers (gem5 include/gem5/asm/generic/m5ops.h; semantics from
 * src/sim/pseudo_inst.cc), and the record the QEMU side keeps of them, pure: the plugin appends
 * one JSON object a line to the instance's m5ops.log; commands read it back here.
 */
import { printable } from '../terminal-text.js';

/** gem5's function numbers: bits 15..8 of the offset into the 64 KiB range. */
export const M5OPS: Record<number, string> = {
  0x00: 'arm',
  0x01: 'quiesce',
  0x02: 'quiesce_ns',
  0x03: 'quiesce_cycle',
  0x04: 'quiesce_time',
  0x07: 'rpns',
  0x09: 'wake_cpu',
  0x21: 'exit',
  0x22: 'fail',
  0x23: 'sum',
  0x30: 'init_param',
  0x31: 'load_symbol',
  0x40: 'reset_stats',
  0x41: 'dump_stats',
  0x42: 'dump_reset_stats',
  0x43: 'checkpoint',
  0x4f: 'write_file',
  0x50: 'read_file',
  0x51: 'debug_break',
  0x52: 'switch_cpu',
  0x53: 'add_symbol',
  0x54: 'panic',
  0x5a: 'work_begin',
  0x5b: 'work_end',
  0x62: 'dist_toggle_sync',
  0x70: 'workload',
  0x71: 'hypercall',
};

/** One line of m5ops.log. */
export interface M5opEvent {
  /** Host time (ms since the epoch) and QEMU's virtual clock (ns) when the op ran. */
  time: number;
  vclockNs: number;
  vcpu: number;
  func: number;
  op: string;
  args: string[];
  /** What the load returned (hex). */
  result: string;
  /** exit/fail/panic: the code `m5ops wait` returns (exit 0, fail its code, panic 134). */
  code?: number;
  /** write_file/read_file: the host-side name, and what happened. */
  file?: string;
  note?: string;
}

/** The events of a log; a torn last line (QEMU writing it now) is left for the next read. */
export function parseLog(text: string): M5opEvent[] {
  const out: M5opEvent[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const e = JSON.parse(line) as M5opEvent;
      if (typeof e.func === 'number' && typeof e.op === 'string') out.push(e);
    } catch {
      // a line QEMU is still writing
    }
  }
  return out;
}

/**
 * Ops that end a gem5 run: `m5ops wait` returns at the next one. A writefile the host could not
 * complete is one too (code 1: gem5's simulation dies of it).
 */
export function isExit(e: M5opEvent): boolean {
  return e.code !== undefined && (e.op === 'exit' || e.op === 'fail' || e.op === 'panic' || e.op === 'write_file');
}

export function lastExit(events: M5opEvent[]): M5opEvent | undefined {
  return events.filter(isExit).pop();
}

/** A process exit status for a guest's code: its low byte, except that a failure never reads as 0 (fail(256)). */
export function exitStatus(code: number): number {
  return (code & 0xff) !== 0 || code === 0 ? code & 0xff : 1;
}

/** A log line for people. */
export function describeEvent(e: M5opEvent): string {
  const when = new Date(e.time).toISOString();
  const args = e.args.length ? `(${e.args.join(', ')})` : '()';
  const extra = [e.code !== undefined ? `code ${e.code}` : '', e.file ? `file ${e.file}` : '', e.note ?? ''].filter(Boolean).join('; ');
  return printable(`${when} vcpu${e.vcpu} ${e.op}${args} = ${e.result}${extra ? `  [${extra}]` : ''}`);
}
