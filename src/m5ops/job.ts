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

/**
 * What a job's JUnit report calls its failure: none when the job's code is 0 (its last exit, or
 * gem5's `m5 fail 0`, which gem5 and m5dev both end with code 0), else the op that ended it.
 */
export function jobFailure(end: JobEnd): string | undefined {
  return end.code === 0 ? undefined : `the guest's m5 ${end.kind} ${end.code}`;
}
