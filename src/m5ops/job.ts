/**
 * When a disk-image job (`m5dev run`) is over, pure: at the guest's first fail or panic, or at its
 * Nth exit (gem5-resources' images exit once when booted, and again when their script is done).
 */
import type { M5opEvent } from './ops.js';

export type JobEnd =
  | { kind: 'exit'; event: M5opEvent; code: 0 }
  | { kind: 'fail' | 'panic'; event: M5opEvent; code: number };

/** `exits`: the launch's exit/fail/panic records in order; `wanted`: the exit that ends the job (1-based). */
export function jobEnd(exits: M5opEvent[], wanted: number): JobEnd | undefined {
  let seen = 0;
  for (const e of exits) {
    if (e.op === 'exit') {
      if (++seen >= wanted) return { kind: 'exit', event: e, code: 0 };
    } else if (e.op === 'fail' || e.op === 'panic') {
      return { kind: e.op, event: e, code: e.code ?? 1 };
    }
  }
  return undefined;
}

/** How many exits of the job were seen so far (for progress). */
export function exitsSeen(exits: M5opEvent[]): number {
  return exits.filter((e) => e.op === 'exit').length;
}
