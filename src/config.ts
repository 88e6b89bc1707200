/**
 * Pinned defaults and the optional project config file (m5dev.json in the working directory).
 * Precedence: command-line flag > m5dev.json > these defaults. Pure except `loadConfigFile`.
 */
import { readFileSync, existsSync, realpathSync, statfsSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { UntrustedConfigError, UsageError } from './errors.js';
import { checkShares, hostShareRefusal, parseShare, type Share } from './vm/shares.js';
import { availableParallelism, homedir, totalmem } from 'node:os';
import { layout } from './paths.js';
import { M5OPS_ADDR_WANT, M5OPS_SIZE, PCIE_MMIO, SETTINGS, SETTING_TRUST as TRUST_OF, schemaError, type SettingName, type Trust } from './config-schema.js';

export const SEED_IMAGE_URL =
  'https://cloud-images.ubuntu.com/releases/22.04/release-20240612/ubuntu-22.04-server-cloudimg-arm64.img';

export interface VmConfig {
  imageUrl: string;
  /** Pinned digest; when absent it is read from SHA256SUMS beside the image. */
  imageSha256?: string;
  disk: 'raw' | 'overlay';
  diskGrow: string;
  sshPort: number;
  cpus: number;
  memoryMiB: number;
  cpu?: string;
  accel: 'auto' | 'kvm' | 'tcg';
  bootTimeoutSec: number;
  baseImage: string;
  /**
   * Guest RAM as a file in the VM container's tmpfs: `suspend` saves the device state and copies the
   * RAM file out (sparse), a resume copies it back and loads only the device state. Off: anonymous
   * RAM, saved whole into QEMU's migration stream (a resume then loads every page of it).
   */
  ramFile: boolean;
  /** Host directories mounted in the guest (vm/shares.ts). */
  shares: Share[];
  /**
   * Under TCG, the size of QEMU's translated-code cache in MiB. QEMU's own default (1 GiB) ends up
   * resident once a guest has booted, most of a 2 GiB guest's host memory; a smaller cache is
   * flushed and refilled when guest code outgrows it.
   */
  tcgCacheMiB: number;
  /** Guest-physical base of the m5ops MMIO range (64 KiB; gem5's Arm default 0x10010000). */
  m5opsAddr: number;
  /** A host file the guest's m5 readfile reads (copied into the instance; `m5dev m5ops readfile` replaces it). */
  m5opsReadfile?: string;
  /** What a guest's m5 exit/fail does: recorded only (gem5 images call `m5 exit` after boot), or also powers the VM off. */
  m5opsExit: 'continue' | 'poweroff';
  /** What dump_stats reports besides the clocks: `insns` also counts the instructions the vCPUs run (simInsts; it costs time). */
  m5opsStats: 'clock' | 'insns';
  /** What the guest's init_param answers, by key (gem5's `m5 initparam KEY`; '' is its default init_param). */
  m5opsParams: M5opsParam[];
  /** Under `up`: the guest's `m5 checkpoint` pauses it and the instance's checkpoint agent saves it (else the op is only logged). */
  m5opsCheckpoints: boolean;
}

/** One init_param value: a key of up to 16 characters (gem5's m5 packs it in two registers) and a 64-bit value, in decimal. */
export interface M5opsParam {
  key: string;
  value: string;
}

export const DEFAULTS: VmConfig = {
  imageUrl: SEED_IMAGE_URL,
  disk: 'raw',
  diskGrow: '+10G',
  sshPort: 5555,
  cpus: 2,
  memoryMiB: 2048,
  accel: 'auto',
  bootTimeoutSec: 900,
  baseImage: 'debian:bookworm-slim',
  ramFile: true,
  shares: [],
  tcgCacheMiB: 256,
  m5opsAddr: 0x10010000,
  m5opsExit: 'continue',
  m5opsStats: 'clock',
  m5opsParams: [],
  m5opsCheckpoints: false,
};

/**
 * What each setting does, for the trust rules of a cloned repository's m5dev.json (the guest and a
 * repository's file are untrusted): `code` chooses code or bytes the host runs or boots (the
 * toolchain's base image, the cloud image and its digest): refused from a repository's file unless
 * `up --trust-config NAME` names it; `resource` is capped to what this host has; `data` is checked
 * where it is parsed (shares and the readfile inside the file's own tree, shares read-only).
 */
export const SETTING_TRUST: Record<keyof VmConfig, Trust> = TRUST_OF;
/** The schema's table has no setting VmConfig lacks (and the line above, none it lacks): checked by the compiler. */
const _noExtraSetting: [Exclude<keyof typeof SETTINGS, keyof VmConfig>] extends [never] ? true : never = true;
void _noExtraSetting;

/** The settings a repository's m5dev.json may set only when `--trust-config` names them. */
export const CODE_SETTINGS = (Object.keys(SETTING_TRUST) as (keyof VmConfig)[]).filter((k) => SETTING_TRUST[k] === 'code');

/** `--trust-config a,b`: each a setting that chooses code. */
export function parseTrustList(text: string | undefined): Set<keyof VmConfig> {
  const names = (text ?? '').split(',').map((n) => n.trim()).filter(Boolean);
  for (const n of names) {
    if (!(CODE_SETTINGS as string[]).includes(n)) throw new UsageError(`--trust-config: "${n}" is not a setting that chooses code`, `Name some of: ${CODE_SETTINGS.join(', ')}.`);
  }
  return new Set(names as (keyof VmConfig)[]);
}

/** What this host can give a guest: its cores, three quarters of its memory, the free space where instances live. */
export interface HostResources {
  cpus: number;
  memoryMiB: number;
  diskFreeGiB: number;
}

export function hostResources(home: string): HostResources {
  return { cpus: availableParallelism(), memoryMiB: Math.floor((totalmem() / (1 << 20)) * 0.75), diskFreeGiB: freeGiB(home) };
}

/** Free space of the file system that holds `dir` (or its nearest existing parent), GiB. */
function freeGiB(dir: string): number {
  for (let d = dir; ; d = dirname(d)) {
    try {
      const st = statfsSync(d);
      return Math.floor((st.bavail * st.bsize) / 2 ** 30);
    } catch {
      if (dirname(d) === d) return 0;
    }
  }
}

/** Pure: a `diskGrow` size ("+10G") in bytes. */
export function growBytes(size: string): number {
  const m = /^\+?(\d+)([KMGT]?)$/.exec(size);
  if (!m) return Number.NaN;
  return Number(m[1]) * 1024 ** ' KMGT'.indexOf(m[2] || ' ');
}

/**
 * Pure: a repository's resource settings capped to what the host has; each cap as a note for the
 * user (printed: the file asked, the host decides).
 */
export function capResources(file: Partial<VmConfig>, host: HostResources, source: string): { config: Partial<VmConfig>; notes: string[] } {
  const config = { ...file };
  const notes: string[] = [];
  if (config.cpus !== undefined && config.cpus > host.cpus) {
    notes.push(`${source} asks for ${config.cpus} vCPUs; capped to ${host.cpus} (this host's cores)`);
    config.cpus = host.cpus;
  }
  if (config.memoryMiB !== undefined && config.memoryMiB > host.memoryMiB) {
    notes.push(`${source} asks for ${config.memoryMiB} MiB of guest memory; capped to ${host.memoryMiB} MiB (three quarters of this host's)`);
    config.memoryMiB = host.memoryMiB;
  }
  if (config.diskGrow !== undefined && growBytes(config.diskGrow) > host.diskFreeGiB * 2 ** 30) {
    const cap = `+${host.diskFreeGiB}G`;
    notes.push(`${source} asks to grow the disk by ${config.diskGrow.slice(1)}; capped to ${cap.slice(1)} (the free space where instances live)`);
    config.diskGrow = cap;
  }
  if (config.tcgCacheMiB !== undefined && config.tcgCacheMiB > host.memoryMiB / 4) {
    const cap = Math.max(32, Math.floor(host.memoryMiB / 4));
    notes.push(`${source} asks for a ${config.tcgCacheMiB} MiB translated-code cache; capped to ${cap} MiB`);
    config.tcgCacheMiB = cap;
  }
  return { config, notes };
}

export { M5OPS_SIZE } from './config-schema.js';

/** An m5ops base: 64 KiB aligned, inside virt's PCIe MMIO window (never over RAM or a platform device). */
export function parseM5opsAddr(value: unknown, bad: (want: string) => Error): number {
  const n = typeof value === 'string' && /^(0x[0-9a-f]+|\d+)$/i.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n % M5OPS_SIZE !== 0 || n < PCIE_MMIO.start || n + M5OPS_SIZE > PCIE_MMIO.end) throw bad(M5OPS_ADDR_WANT);
  return n;
}

export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}


/** Validate a partial config (from JSON or flags); unknown keys and bad values are usage errors. */
export function parseConfig(raw: unknown, source: string, baseDir = process.cwd()): Partial<VmConfig> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new UsageError(`${source}: expected a JSON object`);
  }
  // The schema first (config-schema.ts: what editors check too); then what it cannot say.
  const given = Object.fromEntries(Object.entries(raw as Record<string, unknown>).filter(([, v]) => v !== undefined));
  const wrong = schemaError(given);
  if (wrong?.kind === 'not-object') throw new UsageError(`${source}: expected a JSON object`);
  if (wrong?.kind === 'unknown') throw new UsageError(`${source}: unknown setting "${wrong.key}"`);
  if (wrong?.kind === 'bad') throw new UsageError(`${source}: "${wrong.key}" must be ${SETTINGS[wrong.key].want}, got ${JSON.stringify(given[wrong.key])}`);
  // Each value is of its schema's type now: what is left is to convert it and to check what the
  // schema cannot say (numbers given as strings, a share resolved on this machine, a value past 2^64).
  const out: Partial<VmConfig> = {};
  for (const [key, value] of Object.entries(given)) {
    const bad = (want: string) => new UsageError(`${source}: "${key}" must be ${want}, got ${JSON.stringify(value)}`);
    const text = value as string;
    switch (key as SettingName | '$schema') {
      case '$schema':
        break;
      case 'imageUrl':
        out.imageUrl = text;
        break;
      case 'imageSha256':
        out.imageSha256 = text.toLowerCase();
        break;
      case 'disk':
        out.disk = value as VmConfig['disk'];
        break;
      case 'diskGrow':
        out.diskGrow = text.startsWith('+') ? text : `+${text}`;
        break;
      case 'sshPort':
        out.sshPort = intIn(value, 1, 65535, bad);
        break;
      case 'cpus':
        out.cpus = intIn(value, 1, 64, bad);
        break;
      case 'memoryMiB':
        out.memoryMiB = intIn(value, 256, 1 << 20, bad);
        break;
      case 'bootTimeoutSec':
        out.bootTimeoutSec = intIn(value, 10, 86400, bad);
        break;
      case 'cpu':
        out.cpu = text;
        break;
      case 'accel':
        out.accel = value as VmConfig['accel'];
        break;
      case 'tcgCacheMiB':
        out.tcgCacheMiB = intIn(value, 32, 4096, bad);
        break;
      case 'ramFile':
        out.ramFile = value as boolean;
        break;
      case 'shares':
        out.shares = checkShares(
          (value as (string | { host: string; guest?: string; readOnly?: boolean })[]).map((v) => {
            if (typeof v === 'string') return parseShare(v, baseDir, source);
            const share = parseShare(v.guest === undefined ? v.host : `${v.host}:${v.guest}`, baseDir, source);
            return { ...share, readOnly: v.readOnly ?? share.readOnly };
          }),
          source,
        );
        for (const share of out.shares) {
          // Checked, and bound, as the kernel resolves it: what is checked is what the guest gets.
          const real = realPath(share.host);
          if (real === undefined) throw new UsageError(`${source}: the share ${share.host} is not a directory m5dev can resolve`, 'Create it first, or fix the links in its path.');
          const mine = layout().root;
          const why = hostShareRefusal(real, homedir(), [realPath(mine) ?? mine]);
          if (why) throw new UsageError(`${source}: will not share ${share.host} with the guest: ${why}`, 'The guest is untrusted: share a project directory (e.g. --share ~/m5:m5), and copy single files with `m5dev cp`.');
          share.host = real;
        }
        break;
      case 'm5opsAddr':
        out.m5opsAddr = parseM5opsAddr(value, bad);
        break;
      case 'm5opsExit':
        out.m5opsExit = value as VmConfig['m5opsExit'];
        break;
      case 'm5opsStats':
        out.m5opsStats = value as VmConfig['m5opsStats'];
        break;
      case 'm5opsParams':
        out.m5opsParams = (value as string[]).map((v) => parseM5opsParam(v, bad));
        if (new Set(out.m5opsParams.map((p) => p.key)).size !== out.m5opsParams.length) throw bad(SETTINGS.m5opsParams.want);
        break;
      case 'm5opsCheckpoints':
        out.m5opsCheckpoints = value as boolean;
        break;
      case 'm5opsReadfile':
        out.m5opsReadfile = isAbsolute(text) ? text : join(baseDir, text);
        break;
      case 'baseImage':
        out.baseImage = text;
        break;
    }
  }
  return out;
}

/** `KEY=VALUE` for init_param: KEY up to 16 printable characters without `,` or `=` (empty: gem5's default init_param), VALUE 0 … 2^64-1 (decimal or 0x hex). */
export function parseM5opsParam(text: unknown, bad: (want: string) => Error): M5opsParam {
  const want = '"KEY=VALUE" (KEY up to 16 characters, no "," or "="; VALUE a 64-bit number, decimal or 0x hex)';
  if (typeof text !== 'string') throw bad(want);
  const m = /^([\x21-\x2b\x2d-\x3c\x3e-\x7e]{0,16})=(0x[0-9a-fA-F]{1,16}|\d{1,20})$/.exec(text);
  if (!m) throw bad(want);
  const value = BigInt(m[2] ?? '');
  if (value >= 2n ** 64n) throw bad(want);
  return { key: m[1] ?? '', value: value.toString() };
}

/** A whole-number command-line option within bounds. */
export function parseIntOption(text: string, name: string, min: number, max: number): number {
  return intIn(text, min, max, (want) => new UsageError(`${name} must be ${want}, got ${JSON.stringify(text)}`));
}

function intIn(value: unknown, min: number, max: number, bad: (w: string) => Error): number {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) throw bad(`an integer from ${min} to ${max}`);
  return n;
}

/** Parse a memory size such as 2048, 2G, 512M into MiB. */
export function parseMemory(text: string): number {
  const m = /^(\d+)([MG]?)$/i.exec(text.trim());
  if (!m) throw new UsageError(`--memory: expected a size like 2048, 512M or 4G, got "${text}"`);
  const n = Number(m[1]);
  return m[2]?.toUpperCase() === 'G' ? n * 1024 : n;
}

/**
 * A cloned repository's m5dev.json (in `dir`): untrusted. Settings that choose code are refused
 * (exit 22) unless `trusted` names them; what it shares with the guest and its readfile must lie in
 * its own tree, and its shares are read-only (a writable one is given on the command line).
 */
export function loadConfigFile(dir = process.cwd(), trusted: ReadonlySet<keyof VmConfig> = new Set()): Partial<VmConfig> {
  const file = join(dir, 'm5dev.json');
  const config = readConfig(file, dir);
  if (config === undefined) return {};
  const refused = CODE_SETTINGS.filter((k) => config[k] !== undefined && !trusted.has(k));
  if (refused.length) throw new UntrustedConfigError(file, refused);
  // A cloned repository's m5dev.json is not trusted: what it hands the guest must be its own tree.
  const root = realPath(dir) ?? dir;
  // Fails closed: a path whose links cannot be resolved is not inside.
  const inside = (p: string) => {
    const real = realPath(p);
    return real !== undefined && (real === root || real.startsWith(`${root}/`));
  };
  const hint = 'An m5dev.json may share with the guest only what lies in its own directory tree; give anything else on the command line (--share, --m5ops-readfile).';
  for (const share of config.shares ?? []) {
    if (!inside(share.host)) throw new UsageError(`${file}: the share ${share.host} lies outside ${root}`, hint);
    share.readOnly = true;
  }
  if (config.m5opsReadfile && !inside(config.m5opsReadfile)) throw new UsageError(`${file}: the m5ops readfile ${config.m5opsReadfile} lies outside ${root}`, hint);
  return config;
}

/** The user's own settings, `$M5DEV_HOME/config.json` (same keys as m5dev.json): trusted, as flags are. */
export function loadUserConfig(home: string): Partial<VmConfig> {
  const file = join(home, 'config.json');
  return readConfig(file, home) ?? {};
}

function readConfig(file: string, dir: string): Partial<VmConfig> | undefined {
  if (!existsSync(file)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return parseConfig(raw, file, dir);
}

/**
 * The path with its links resolved by the kernel (realpath(3): Node's own realpathSync resolves a
 * `..` after a link by string, and loops on a link to itself), or undefined when it cannot be.
 */
export function realPath(p: string): string | undefined {
  try {
    return realpathSync.native(p);
  } catch {
    return undefined;
  }
}

/** Flag > the repository's m5dev.json > the user's own config > default. */
export function resolveConfig(flags: Partial<VmConfig>, file: Partial<VmConfig>, user: Partial<VmConfig> = {}): VmConfig {
  return { ...DEFAULTS, ...user, ...file, ...stripUndefined(flags) };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
