/** Kconfig fragments: parse one, and check that a resolved .config honours it (pure). */

/** Symbol → wanted value; `n` for "# CONFIG_X is not set". */
export type Fragment = Map<string, string>;

const SET_RE = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/;
const UNSET_RE = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/;

export function parseConfig(text: string): Fragment {
  const out: Fragment = new Map();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const set = SET_RE.exec(line);
    if (set) out.set(set[1] ?? '', set[2] ?? '');
    const unset = UNSET_RE.exec(line);
    if (unset) out.set(unset[1] ?? '', 'n');
  }
  return out;
}

export interface ConfigMismatch {
  symbol: string;
  wanted: string;
  got: string;
}

/**
 * Every symbol the fragment sets must end up with that value; Kconfig silently drops a symbol
 * whose dependencies are missing or that does not exist in this release.
 */
export function checkConfig(fragment: Fragment, resolved: Fragment): ConfigMismatch[] {
  const bad: ConfigMismatch[] = [];
  for (const [symbol, wanted] of fragment) {
    const got = resolved.get(symbol) ?? 'n';
    if (got !== wanted) bad.push({ symbol, wanted, got: resolved.has(symbol) ? got : 'absent' });
  }
  return bad;
}

export function describeMismatches(bad: ConfigMismatch[]): string {
  return bad.map((m) => `${m.symbol}: wanted ${m.wanted}, got ${m.got}`).join('\n');
}
