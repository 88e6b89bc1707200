/** Pure helpers for the module loop: which files are sources, a module's vermagic, TAP results. */
import { UsageError } from '../errors.js';

const SOURCE_RE = /(^|\/)(Makefile|Kbuild)$|\.(c|h|S)$/;

/** Source files of a module tree (build products of an in-place build are left out). */
export function moduleSources(files: string[]): string[] {
  return files.filter((f) => SOURCE_RE.test(f) && !f.endsWith('.mod.c'));
}

/** The `vermagic=` string of a .ko (its .modinfo section): "<release> SMP preempt mod_unload ...". */
export function vermagicOf(ko: Buffer): string | undefined {
  const at = ko.indexOf('vermagic=');
  if (at < 0) return undefined;
  const end = ko.indexOf(0, at);
  return ko.subarray(at + 'vermagic='.length, end < 0 ? undefined : end).toString('utf8');
}

/** True when a module with this vermagic was built for `release` (the first word must match exactly). */
export function builtFor(vermagic: string, release: string): boolean {
  return vermagic.split(' ')[0] === release;
}

export interface TapSummary {
  passed: number;
  failed: string[];
  planned?: number;
  bailedOut: boolean;
}

export function parseTap(text: string): TapSummary {
  const s: TapSummary = { passed: 0, failed: [], bailedOut: false };
  for (const line of text.split('\n')) {
    const r = /^(not ok|ok) \d+ - (.*)$/.exec(line.trim());
    if (r) {
      if (r[1] === 'ok') s.passed++;
      else s.failed.push(r[2] ?? '');
    }
    const plan = /^1\.\.(\d+)$/.exec(line.trim());
    if (plan) s.planned = Number(plan[1]);
    if (line.startsWith('Bail out!')) s.bailedOut = true;
  }
  return s;
}

export function tapPassed(s: TapSummary): boolean {
  return !s.bailedOut && s.failed.length === 0 && s.planned !== undefined && s.passed === s.planned && s.passed > 0;
}

/** `name=value` module parameters, validated so they are safe on an insmod command line. */
export function parseModuleParams(params: string[]): string[] {
  for (const p of params) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*=[A-Za-z0-9_.,:+-]+$/.test(p)) throw new UsageError(`bad module parameter "${p}"`, 'Use name=value, e.g. --param gem5_bridge_baseaddr=0x10010000.');
  }
  return params;
}

/** The project's module's parameter for the m5ops base (gem5's util/gem5_bridge names it so). */
export const BASE_PARAM = 'gem5_bridge_baseaddr';

/**
 * The parameters a load uses in an instance whose m5ops range is at `base` (pure): the user's, plus
 * the base when it is not the module's own default and the user did not name one. (A module without
 * that parameter loads all the same: the kernel ignores an unknown one, with a line in dmesg.)
 */
export function paramsForInstance(params: string[], base: number | undefined, moduleDefault: number): string[] {
  if (base === undefined || base === moduleDefault || params.some((p) => p.startsWith(`${BASE_PARAM}=`))) return params;
  return [...params, `${BASE_PARAM}=0x${base.toString(16)}`];
}
