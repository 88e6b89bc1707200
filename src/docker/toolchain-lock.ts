/**
 * The toolchain lock (docker/m5dev-tools/toolchain.lock), pure: every package the toolchain image
 * build installs on its base, with its exact version and architecture, per image architecture; the
 * base image it was resolved on (its own packages are pinned by its digest); an optional snapshot
 * archive URL. The file is in the build context, so the
 * image tag (a hash of the context) changes with it; the image build installs exactly it
 * (m5dev-install-locked), and `m5dev image lock` rewrites it.
 */
import { UsageError } from '../errors.js';

export const LOCK_FILE = 'm5dev-tools/toolchain.lock';

export interface LockedBase {
  /** The base image reference, its image ID, and its registry digest when it came from a registry. */
  ref: string;
  id: string;
  repoDigest?: string;
}

/** name:arch → version. */
export type PackageSet = Map<string, string>;

export interface ToolchainLock {
  snapshot?: string;
  bases: Map<string, LockedBase>;
  packages: Map<string, PackageSet>;
}

const HEADER = [
  '# m5dev toolchain lock: `m5dev image lock` writes it; the toolchain image build installs these packages',
  '# at these versions (from the snapshot archive when it answers, else the mirror). A version the mirror no',
  '# longer serves is replaced by the served one and named; with --strict-lock the build fails instead.',
  '# snapshot URL|-   a snapshot archive (e.g. https://snapshot.debian.org/archive/debian/20261125T000000Z) to install from',
  '# base ARCH REF IMAGE-ID REPO-DIGEST|-   the base image the packages were resolved on',
  '# pkg ARCH NAME:PKGARCH VERSION',
];

export function parseLock(text: string, source = 'toolchain.lock'): ToolchainLock {
  const lock: ToolchainLock = { bases: new Map(), packages: new Map() };
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const f = line.split(/\s+/);
    const bad = () => new UsageError(`${source}:${i + 1}: cannot read "${line}"`, 'Rewrite the lock with `m5dev image lock`.');
    if (f[0] === 'snapshot' && f.length === 2) lock.snapshot = f[1] === '-' ? undefined : f[1];
    else if (f[0] === 'base' && f.length === 5) lock.bases.set(f[1] ?? '', { ref: f[2] ?? '', id: f[3] ?? '', repoDigest: f[4] === '-' ? undefined : f[4] });
    else if (f[0] === 'pkg' && f.length === 4 && (f[2] ?? '').includes(':')) {
      const set = lock.packages.get(f[1] ?? '') ?? new Map<string, string>();
      set.set(f[2] ?? '', f[3] ?? '');
      lock.packages.set(f[1] ?? '', set);
    } else throw bad();
  });
  return lock;
}

export function formatLock(lock: ToolchainLock): string {
  const lines = [...HEADER, `snapshot ${lock.snapshot ?? '-'}`];
  const byKey = <V>(m: Map<string, V>) => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [arch, b] of byKey(lock.bases)) lines.push(`base ${arch} ${b.ref} ${b.id} ${b.repoDigest ?? '-'}`);
  for (const [arch, set] of byKey(lock.packages)) {
    for (const [name, version] of byKey(set)) lines.push(`pkg ${arch} ${name} ${version}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * What the build installs on the base: the packages `apt-get install -s` says it would install or
 * upgrade ("Inst NAME [OLD] (NEW ... [ARCH])"), with exact versions and architectures.
 */
export function parseSimulation(simulation: string): PackageSet {
  const out: PackageSet = new Map();
  for (const line of simulation.split('\n')) {
    const m = /^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) .*\[([a-z0-9]+)\]\)/.exec(line);
    if (m) out.set(`${(m[1] ?? '').split(':')[0]}:${m[3]}`, m[2] ?? '');
  }
  return out;
}

export interface PackageChange {
  name: string;
  from?: string;
  to?: string;
}

/** What changed between two package sets, sorted by name. */
export function diffPackages(before: PackageSet | undefined, after: PackageSet): PackageChange[] {
  const names = new Set([...(before?.keys() ?? []), ...after.keys()]);
  const out: PackageChange[] = [];
  for (const name of [...names].sort()) {
    const from = before?.get(name);
    const to = after.get(name);
    if (from !== to) out.push({ name, from, to });
  }
  return out;
}

export function describeChange(c: PackageChange): string {
  if (c.from === undefined) return `+ ${c.name} ${c.to}`;
  if (c.to === undefined) return `- ${c.name} ${c.from}`;
  return `~ ${c.name} ${c.from} → ${c.to}`;
}

/** Debian's name for an engine architecture (uname -m). */
export function debianArch(machine: string): string {
  return ({ x86_64: 'amd64', aarch64: 'arm64' } as Record<string, string>)[machine] ?? machine;
}

/** The "m5dev-lock: ..." lines of a failed locked install, as one message for the user (undefined if none). */
export function lockFailure(log: string): { message: string; hint: string } | undefined {
  const lines = log.split('\n').map((l) => /m5dev-lock: (\S+) ?(.*)$/.exec(l)).filter((m): m is RegExpExecArray => m !== null);
  if (lines.length === 0) return undefined;
  const of = (kind: string) => lines.filter((m) => m[1] === kind).map((m) => (m[2] ?? '').trim());
  const noArch = of('no-arch');
  if (noArch.length) {
    return { message: `the toolchain lock has no packages for ${noArch[0]}`, hint: `Run \`m5dev image lock\` against a ${noArch[0]} engine (it adds that architecture to the lock).` };
  }
  const notServed = of('not-served');
  if (notServed.length) {
    return {
      message: `the toolchain lock pins ${notServed.slice(0, 5).join(', ')}${notServed.length > 5 ? ` and ${notServed.length - 5} more` : ''}, which the mirror no longer serves`,
      hint: 'Debian mirrors drop superseded versions. This is a strict build (--strict-lock or M5DEV_STRICT_LOCK=1): without it the served versions are installed and named. Or point the lock\'s `snapshot` line at a snapshot archive from the lock\'s date (snapshot.debian.org keeps every version), or move to the served versions with `m5dev image lock`.',
    };
  }
  const unsatisfiable = of('unsatisfiable');
  if (unsatisfiable.length) {
    const named = unsatisfiable.filter((u) => u !== '- -');
    return {
      message: named.length
        ? `the toolchain lock pins ${named.slice(0, 5).join(', ')}${named.length > 5 ? ` and ${named.length - 5} more` : ''}, which no longer installs beside this base image's packages`
        : "the toolchain lock's packages no longer install together, even at the versions the mirror serves (apt's words above)",
      hint: "The base image or the mirror moved on since the lock was made: a locked package needs an exact version of another that has changed. Without --strict-lock (or M5DEV_STRICT_LOCK=1) the served versions of the packages named are installed and named; or build on the lock's own base (its digest) and snapshot archive, or move the lock with `m5dev image lock`.",
    };
  }
  const missing = of('missing');
  return {
    message: `after installing, the toolchain image lacks locked versions: ${missing.slice(0, 6).join(', ')}${missing.length > 6 ? ` and ${missing.length - 6} more` : ''}`,
    hint: 'This base image holds other versions than the one the lock was made on: use that base, or rewrite the lock for this one with `m5dev image lock`.',
  };
}

/**
 * Pure: the commands m5dev-install-locked runs to point apt at the lock's snapshot archive (the
 * body of its `if [ -n "$snapshot" ] …; then` block, comments left out): `m5dev image lock`
 * resolves against the same sources as the image build, from this one place.
 */
export function snapshotSources(installScript: string): string[] {
  const lines = installScript.split('\n');
  const start = lines.findIndex((l) => /^if \[ -n "\$snapshot" \]/.test(l));
  const end = lines.findIndex((l, i) => i > start && l === 'fi');
  if (start < 0 || end < 0) throw new Error('m5dev-install-locked has no snapshot block (if [ -n "$snapshot" ] … fi)');
  return lines.slice(start + 1, end).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
}

/** A locked package the mirror no longer served at its locked version, and the version installed instead. */
export interface LockDrift {
  name: string;
  locked: string;
  served: string;
}

/** The "m5dev-lock-drift: NAME LOCKED SERVED" lines of a build log (or the image's lock-drift record, "NAME LOCKED SERVED"). */
/** The marker m5dev-install-locked puts before each drift line of a build's log. */
export const DRIFT_MARK = 'm5dev-lock-drift: ';

/** Pure: whether a build log line is a drift line (only marked ones: a package's own output may look alike). */
export const isDriftLine = (line: string): boolean => line.startsWith(DRIFT_MARK);

export function parseDrift(log: string): LockDrift[] {
  const out: LockDrift[] = [];
  for (const line of log.split(/\r?\n/)) {
    const m = /^(?:m5dev-lock-drift: )?(\S+:\S+) (\S+) (\S+)$/.exec(line.trim());
    if (m) out.push({ name: m[1] ?? '', locked: m[2] ?? '', served: m[3] ?? '' });
  }
  return out;
}

export function describeDrift(drift: LockDrift[]): string {
  return drift.map((d) => `${d.name} ${d.locked} → ${d.served}`).join(', ');
}

/**
 * The digest a lock may record for its base: a RepoDigests entry of the base's own repository only
 * (an image also pushed to another registry carries that registry's digest too, which names nothing
 * the base reference could pull).
 */
export function ownRepoDigest(ref: string, repoDigests: string[] | undefined): string | undefined {
  const norm = (repo: string) => repo.replace(/^(?:docker\.io|index\.docker\.io|registry-1\.docker\.io)\//, '').replace(/^library\//, '');
  const repo = norm(ref.replace(/@.*$/, '').replace(/:[^/:]+$/, ''));
  for (const d of repoDigests ?? []) {
    const [name, digest] = d.split('@');
    if (name !== undefined && digest && norm(name) === repo) return digest;
  }
  return undefined;
}
