/**
 * m5dev.json's settings, written once: each one's JSON Schema, what an error says it must be, and
 * its trust (which settings a cloned repository's file may set: see config.ts). From this table come
 * the JSON Schema editors and CI linters check the file with (`m5dev.schema.json`, published in the
 * package and named by `m5dev init`'s `$schema`), the validation parseConfig runs first (ajv), and
 * the trust table. What a schema cannot say (ranges of numbers given as strings on the command line,
 * memory sizes, a share's path resolved on this machine) is checked in config.ts after it.
 */
import { Ajv, type ErrorObject } from 'ajv';

/** code: chooses code or bytes the host runs or boots (refused from a repository's file unless trusted); resource: capped to the host's; data: checked where parsed. */
export type Trust = 'code' | 'resource' | 'data';

interface Setting {
  trust: Trust;
  /** What a wrong value must be, in an error message ("must be …"). */
  want: string;
  description: string;
  schema: Record<string, unknown>;
}

/** The m5ops range's size (gem5's, and gem5_bridge's default gem5_bridge_rangesize). */
export const M5OPS_SIZE = 0x10000;
/** virt's PCIe MMIO window, where the m5ops range may lie (it overlays the window at a higher priority). */
export const PCIE_MMIO = { start: 0x10000000, end: 0x3eff0000 };
export const M5OPS_ADDR_WANT = `a 64 KiB-aligned address from 0x${PCIE_MMIO.start.toString(16)} to 0x${(PCIE_MMIO.end - M5OPS_SIZE).toString(16)} (virt's PCIe MMIO window), e.g. 0x10010000`;

/** A whole number, or its digits as a string (command-line flags are strings): the range in both. */
const integer = (min: number, max: number) => ({ anyOf: [{ type: 'integer', minimum: min, maximum: max }, { type: 'string', pattern: '^\\d+$' }] });
const between = (min: number, max: number) => `an integer from ${min} to ${max}`;
const SHARES_WANT = 'a list of "HOST_DIR[:GUEST_PATH][:ro]" strings or {"host", "guest", "readOnly"} objects';
const PARAMS_WANT = 'a list of at most 32 "KEY=VALUE" (KEY up to 16 printable characters but "," and "=", each once; VALUE a 64-bit number)';

export const SETTINGS = {
  imageUrl: { trust: 'code', want: 'an http(s):// or file:// URL', description: 'The cloud image to boot (default: Ubuntu 22.04 arm64 release-20240612). Chooses what boots: from a repository\'s m5dev.json only with `up --trust-config imageUrl`.', schema: { type: 'string', pattern: '^(https?|file)://' } },
  imageSha256: { trust: 'code', want: '64 hex digits', description: "The cloud image's SHA-256 (default: read from the SHA256SUMS beside it). From a repository's m5dev.json only with `up --trust-config imageSha256`.", schema: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' } },
  baseImage: { trust: 'code', want: 'an image reference', description: "The toolchain image's base (its FROM). From a repository's m5dev.json only with `up --trust-config baseImage`.", schema: { type: 'string', minLength: 1 } },
  disk: { trust: 'data', want: '"raw" or "overlay"', description: 'The instance disk: a raw copy of the image (default) or a qcow2 overlay on the cached image.', schema: { enum: ['raw', 'overlay'] } },
  diskGrow: { trust: 'resource', want: 'a size like +10G', description: 'How much the instance disk grows beyond the image (default +10G); capped to the free space.', schema: { type: 'string', pattern: '^\\+?\\d+[KMGT]?$' } },
  sshPort: { trust: 'data', want: between(1, 65535), description: "The port on 127.0.0.1 for the guest's SSH (default 5555, the next free one if taken).", schema: integer(1, 65535) },
  cpus: { trust: 'resource', want: between(1, 64), description: "vCPUs (default 2); capped to the host's cores.", schema: integer(1, 64) },
  memoryMiB: { trust: 'resource', want: between(256, 1 << 20), description: "Guest memory in MiB (default 2048); capped to three quarters of the host's.", schema: integer(256, 1 << 20) },
  cpu: { trust: 'data', want: 'a QEMU -cpu model', description: 'QEMU -cpu model (default cortex-a57 under TCG, host under KVM).', schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_,=.-]*$' } },
  accel: { trust: 'data', want: 'auto, kvm or tcg', description: 'The accelerator (default auto: KVM on an arm64 host with /dev/kvm, else TCG).', schema: { enum: ['auto', 'kvm', 'tcg'] } },
  bootTimeoutSec: { trust: 'data', want: between(10, 86400), description: 'Seconds to wait for SSH (default 900).', schema: integer(10, 86400) },
  ramFile: { trust: 'data', want: 'true or false', description: "Guest RAM as a file in the VM container's tmpfs, so suspend saves only the device state (default true).", schema: { type: 'boolean' } },
  tcgCacheMiB: { trust: 'resource', want: between(32, 4096), description: "Under TCG, QEMU's translated-code cache in MiB (default 256).", schema: integer(32, 4096) },
  shares: {
    trust: 'data',
    want: SHARES_WANT,
    description: "Host directories mounted in the guest over 9p. From m5dev.json they must lie in the file's own tree, and are read-only.",
    schema: {
      type: 'array',
      items: {
        anyOf: [
          { type: 'string', minLength: 1 },
          { type: 'object', properties: { host: { type: 'string', minLength: 1 }, guest: { type: 'string' }, readOnly: { type: 'boolean' } }, required: ['host'], additionalProperties: false },
        ],
      },
    },
  },
  m5opsAddr: { trust: 'data', want: M5OPS_ADDR_WANT, description: 'Guest-physical base of the m5ops range (64 KiB; default 0x10010000, gem5\'s on Arm).', schema: { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string', pattern: '^(0[xX][0-9a-fA-F]+|\\d+)$' }] } },
  m5opsReadfile: { trust: 'data', want: 'a file path', description: "What the guest's `m5 readfile` reads (relative to m5dev.json's directory, and inside it).", schema: { type: 'string', minLength: 1 } },
  m5opsExit: { trust: 'data', want: '"continue" or "poweroff"', description: "On the guest's m5 exit/fail: record it (continue, the default) or also power the VM off with its code.", schema: { enum: ['continue', 'poweroff'] } },
  m5opsStats: { trust: 'data', want: '"clock" or "insns"', description: "What the guest's dump_stats writes: the clocks (default), or also the instructions run.", schema: { enum: ['clock', 'insns'] } },
  m5opsParams: { trust: 'data', want: PARAMS_WANT, description: "What the guest's `m5 initparam KEY` reads: \"KEY=VALUE\" strings (an empty KEY is gem5's default init_param).", schema: { type: 'array', maxItems: 32, items: { type: 'string', pattern: '^[\\x21-\\x2b\\x2d-\\x3c\\x3e-\\x7e]{0,16}=(0[xX][0-9a-fA-F]{1,16}|\\d{1,20})$' } } },
  m5opsCheckpoints: { trust: 'data', want: 'true or false', description: "Under up: the guest's `m5 checkpoint` is saved (the guest pauses while it is; at most 8 a launch; `m5dev up --from-checkpoint NAME:K` starts a new instance from one). Default false: the op is only logged.", schema: { type: 'boolean' } },
} as const satisfies Record<string, Setting>;

export type SettingName = keyof typeof SETTINGS;

/** The trust of each setting (config.ts's rules for a cloned repository's m5dev.json). */
export const SETTING_TRUST = Object.fromEntries(Object.entries(SETTINGS).map(([k, s]) => [k, s.trust])) as Record<SettingName, Trust>;

/** The JSON Schema of m5dev.json (draft-07, which editors and ajv read), with each setting's trust as `x-m5dev-trust`. Pure. */
export function configSchema(): Record<string, unknown> {
  const properties: Record<string, unknown> = { $schema: { type: 'string', description: 'The JSON Schema this file follows (m5dev init sets it).' } };
  for (const [name, s] of Object.entries(SETTINGS) as [SettingName, Setting][]) properties[name] = { description: s.description, ...s.schema, 'x-m5dev-trust': s.trust };
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://m5dev.invalid/m5dev.schema.json',
    title: 'm5dev.json',
    description: "Settings of `m5dev up` for a project (flags win over them; the user's own $M5DEV_HOME/config.json has the same form). Settings marked x-m5dev-trust \"code\" are refused from a repository's file unless `up --trust-config` names them.",
    type: 'object',
    properties,
    additionalProperties: false,
  };
}

let compiled: ReturnType<Ajv['compile']> | undefined;

/** The first reason `raw` is not a valid m5dev.json (a setting, what it must be), or undefined. */
export function schemaError(raw: unknown): { kind: 'not-object' } | { kind: 'unknown'; key: string } | { kind: 'bad'; key: SettingName } | undefined {
  compiled ??= new Ajv({ allErrors: false, strict: true, strictTypes: false, allowUnionTypes: true, keywords: ['x-m5dev-trust'] }).compile(configSchema());
  if (compiled(raw)) return undefined;
  const e: ErrorObject | undefined = compiled.errors?.[0];
  if (!e || e.instancePath === '') {
    if (e?.keyword === 'additionalProperties') return { kind: 'unknown', key: String((e.params as { additionalProperty?: string }).additionalProperty) };
    return { kind: 'not-object' };
  }
  // Below the top (additionalProperties answered for unknown names there): one of the schema's
  // properties, which are SETTINGS' names, is the first part of the path.
  return { kind: 'bad', key: e.instancePath.split('/')[1] as SettingName };
}
