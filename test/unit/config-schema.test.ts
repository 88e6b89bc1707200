/** m5dev.json's JSON Schema (issue 38): written once, published, used to parse, and `m5dev init`. */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { configSchema, schemaError, SETTINGS } from '../../src/config-schema.js';
import { CODE_SETTINGS, SETTING_TRUST, parseConfig } from '../../src/config.js';
import { schemaRef, starterConfig } from '../../src/cli/commands/init.js';
import { CLI, ROOT } from '../helpers/cli.js';

describe("m5dev.json's schema", () => {
  it('is published as generated (make schema), and compiles as strict draft-07', () => {
    expect(readFileSync(join(ROOT, 'm5dev.schema.json'), 'utf8')).toBe(`${JSON.stringify(configSchema(), null, 2)}\n`);
    const ajv = new Ajv({ strict: true, strictTypes: false, allowUnionTypes: true, keywords: ['x-m5dev-trust'] });
    const validate = ajv.compile(configSchema());
    expect(validate({ $schema: 'x', cpus: 4, memoryMiB: '4096', shares: ['src:/home/ubuntu/src:ro', { host: 'b', readOnly: true }], m5opsAddr: '0x10020000', m5opsParams: ['size=4'] })).toBe(true);
    expect(validate({ cpus: 0 })).toBe(false);
    expect(validate({ shares: [{ host: 'a', mode: 'rw' }] })).toBe(false);
    expect(validate({ nope: 1 })).toBe(false);
  });
  it("holds the trust rules: which settings choose code is the schema's metadata, not a second list", () => {
    const props = configSchema().properties as Record<string, { 'x-m5dev-trust'?: string }>;
    const marked = (trust: string) => Object.keys(props).filter((k) => props[k]?.['x-m5dev-trust'] === trust).sort();
    // What the published schema says, against what the host boundary needs (docs/security.md).
    expect(marked('code')).toEqual(['baseImage', 'imageSha256', 'imageUrl']);
    expect(marked('resource')).toEqual(['cpus', 'diskGrow', 'memoryMiB', 'tcgCacheMiB']);
    expect([...CODE_SETTINGS].sort()).toEqual(marked('code'));
    for (const [k, trust] of Object.entries(SETTING_TRUST)) expect(props[k]?.['x-m5dev-trust'], k).toBe(trust);
    expect(Object.keys(SETTINGS).sort()).toEqual(Object.keys(SETTING_TRUST).sort());
  });
  it('a wrong m5dev.json gets the errors it got before, now from the schema', () => {
    expect(() => parseConfig([], 'm5dev.json')).toThrow(/^m5dev\.json: expected a JSON object$/);
    expect(() => parseConfig({ cpu5: 2 }, 'm5dev.json')).toThrow(/^m5dev\.json: unknown setting "cpu5"$/);
    expect(() => parseConfig({ cpus: 'two' }, 'm5dev.json')).toThrow(/^m5dev\.json: "cpus" must be an integer from 1 to 64, got "two"$/);
    expect(() => parseConfig({ cpus: 65 }, 'm5dev.json')).toThrow(/"cpus" must be an integer from 1 to 64, got 65/);
    expect(() => parseConfig({ disk: 'qcow2' }, 'm5dev.json')).toThrow(/"disk" must be "raw" or "overlay", got "qcow2"/);
    expect(() => parseConfig({ ramFile: 'yes' }, 'm5dev.json')).toThrow(/"ramFile" must be true or false/);
    expect(() => parseConfig({ m5opsAddr: true }, 'm5dev.json')).toThrow(/"m5opsAddr" must be a 64 KiB-aligned address from 0x10000000/);
    expect(() => parseConfig({ m5opsAddr: '0x10010001' }, 'm5dev.json')).toThrow(/"m5opsAddr" must be a 64 KiB-aligned address/);
    expect(() => parseConfig({ shares: [3] }, 'm5dev.json')).toThrow(/"shares" must be a list of "HOST_DIR/);
    expect(parseConfig({ $schema: './x.json', cpus: 3 }, 'm5dev.json')).toEqual({ cpus: 3 });
    // init_param: what the schema lets an editor accept, m5dev accepts (and the plugin's limits).
    expect(() => parseConfig({ m5opsParams: ['k\u00e9=1'] }, 'm5dev.json')).toThrow(/"m5opsParams" must be a list of at most 32/);
    expect(() => parseConfig({ m5opsParams: Array.from({ length: 33 }, (_, i) => `k${i}=1`) }, 'm5dev.json')).toThrow(/"m5opsParams" must be/);
    expect(() => parseConfig({ m5opsParams: ['size=1', 'size=2'] }, 'm5dev.json')).toThrow(/each once/);
  });

  it("names the setting a file breaks, as the schema judges it: not an object, a setting it has not, a value it refuses", () => {
    expect(schemaError({ cpus: 2, $schema: './s.json' })).toBeUndefined();
    for (const notObject of [[], null, 'cpus', 3]) expect(schemaError(notObject)).toEqual({ kind: 'not-object' });
    expect(schemaError({ cpu5: 2 })).toEqual({ kind: 'unknown', key: 'cpu5' });
    expect(schemaError({ cpus: 'two' })).toEqual({ kind: 'bad', key: 'cpus' });
    expect(schemaError({ shares: [3] })).toEqual({ kind: 'bad', key: 'shares' }); // deeper in the value: still the setting
    expect(schemaError({ shares: [{ host: 'a', guest: '/b', readOnly: 'yes' }] })).toEqual({ kind: 'bad', key: 'shares' });
  });
});

describe('m5dev init', () => {
  it("names the project's own copy of the schema when it has one, else the installed package's", () => {
    const dir = mkdtempSync(join(tmpdir(), 'm5dev-init-'));
    expect(schemaRef(dir, '/opt/m5dev/m5dev.schema.json')).toBe('file:///opt/m5dev/m5dev.schema.json');
    mkdirSync(join(dir, 'node_modules', 'm5dev'), { recursive: true });
    writeFileSync(join(dir, 'node_modules', 'm5dev', 'm5dev.schema.json'), '{}');
    expect(schemaRef(dir)).toBe('./node_modules/m5dev/m5dev.schema.json');
    expect(parseConfig(starterConfig('x'), 'starter', dir)).toMatchObject({ cpus: 2, memoryMiB: 2048, disk: 'raw', m5opsAddr: 0x10010000 });
  });
  it('writes a starter m5dev.json that m5dev reads; refuses to replace one without --force (exit 2)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'm5dev-init-cli-'));
    const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, M5DEV_HOME: join(dir, 'home') } });
    const first = run('--json', 'init');
    expect(first.status, first.stderr).toBe(0);
    const written = JSON.parse(readFileSync(join(dir, 'm5dev.json'), 'utf8')) as Record<string, unknown>;
    expect(written.$schema).toBe(`file://${join(ROOT, 'm5dev.schema.json')}`);
    expect(JSON.parse(first.stdout)).toEqual({ file: join(dir, 'm5dev.json'), schema: written.$schema });
    const again = run('init');
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/m5dev\.json exists/);
    expect(again.stderr).toMatch(/hint: .*m5dev init --force/);
    writeFileSync(join(dir, 'm5dev.json'), '{"cpus": 1}\n');
    expect(run('init', '--force').status).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'm5dev.json'), 'utf8'))).toMatchObject({ cpus: 2 });
  });
});
