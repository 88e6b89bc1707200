import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/cli.js';
import { GEM5_MARKERS, checkGem5Tree, gem5Sources, patchArm64Opts } from '../../src/gem5/m5-tree.js';

// The shape of gem5's util/m5/src/abi/arm64/SConsopts (develop: the instruction is the default).
const OPTS = [
  "Import('*')",
  '',
  "env['ABI'] = 'arm64'",
  "get_abi_opt('CROSS_COMPILE', 'aarch64-linux-gnu-')",
  '',
  "env['CALL_TYPE']['inst'].impl('m5op.S', 'verify_inst.cc', default=True)",
  "env['CALL_TYPE']['addr'].impl('m5op_addr.S')",
  "env['CALL_TYPE']['semi'].impl('m5op_semi.S', 'verify_semi.cc')",
  '',
  "env.Append(CXXFLAGS='-DM5OP_ADDR=0x10010000')",
  "env.Append(CCFLAGS='-DM5OP_ADDR=0x10010000')",
  '',
].join('\n');

describe("a gem5 tree (m5 install --gem5)", () => {
  it('is one only with util/m5/SConstruct, the arm64 SConsopts and include/gem5/m5ops.h, and the error names each missing', () => {
    expect(() => checkGem5Tree('/t', () => true)).not.toThrow();
    expect(() => checkGem5Tree('/t', () => false)).toThrow('/t is not a gem5 tree: no util/m5/SConstruct, no util/m5/src/abi/arm64/SConsopts, no include/gem5/m5ops.h');
    for (const m of GEM5_MARKERS) {
      expect(() => checkGem5Tree('/t', (r) => r !== m)).toThrow(new RegExp(`^/t is not a gem5 tree: no ${m.replace(/\./g, '\\.')}$`));
    }
    try {
      checkGem5Tree('/t', () => false);
    } catch (e) {
      expect((e as { exitCode: number }).exitCode).toBe(2);
    }
  });

  it('builds from util/m5 (not its build/ output nor SCons state) and include/, regular files only', () => {
    const t = mkdtempSync(join(tmpdir(), 'm5dev-gem5-tree-'));
    for (const d of ['util/m5/src', 'util/m5/build/arm64/out', 'include/gem5', 'src/cpu']) mkdirSync(join(t, d), { recursive: true });
    for (const f of ['util/m5/SConstruct', 'util/m5/src/m5.c', 'util/m5/build/arm64/out/m5', 'util/m5/.sconsign.dblite', 'include/gem5/m5ops.h', 'src/cpu/big.cc']) writeFileSync(join(t, f), 'x');
    symlinkSync('/etc/passwd', join(t, 'include/gem5/link.h'));
    expect(gem5Sources(t)).toEqual(['include/gem5/m5ops.h', 'util/m5/SConstruct', 'util/m5/src/m5.c']);
    rmSync(t, { recursive: true, force: true });
    expect(gem5Sources(join(ROOT, 'test', 'fixtures', 'gem5-tree'))).toContain('util/m5/src/abi/arm64/SConsopts');
  });

  it("makes the address call type the only default and sets M5OP_ADDR where gem5 sets it", () => {
    const p = patchArm64Opts(OPTS, 0x20000000);
    expect(p.wasDefault).toEqual(['inst']);
    expect(p.wasAddr).toEqual(['0x10010000', '0x10010000']);
    const lines = p.text.split('\n');
    expect(lines.filter((l) => l.includes('CALL_TYPE'))).toEqual([
      "env['CALL_TYPE']['inst'].impl('m5op.S', 'verify_inst.cc')",
      "env['CALL_TYPE']['addr'].impl('m5op_addr.S', default=True)",
      "env['CALL_TYPE']['semi'].impl('m5op_semi.S', 'verify_semi.cc')",
    ]);
    expect(lines.filter((l) => l.includes('M5OP_ADDR'))).toEqual(["env.Append(CXXFLAGS='-DM5OP_ADDR=0x20000000')", "env.Append(CCFLAGS='-DM5OP_ADDR=0x20000000')"]);
    // Everything else as it was.
    expect(lines.filter((l) => !l.includes('CALL_TYPE') && !l.includes('M5OP_ADDR'))).toEqual(OPTS.split('\n').filter((l) => !l.includes('CALL_TYPE') && !l.includes('M5OP_ADDR')));
  });

  it('keeps a tree whose default already is addr as it is, and appends M5OP_ADDR to a tree without one', () => {
    const addrDefault = OPTS.replace("'verify_inst.cc', default=True)", "'verify_inst.cc')").replace("impl('m5op_addr.S')", "impl('m5op_addr.S', default = True)");
    const p = patchArm64Opts(addrDefault, 0x10010000);
    expect(p.wasDefault).toEqual(['addr']);
    expect(p.text).toContain("env['CALL_TYPE']['addr'].impl('m5op_addr.S', default=True)");
    const old = OPTS.split('\n').filter((l) => !l.includes('M5OP_ADDR')).join('\n');
    const q = patchArm64Opts(old, 0x10010000);
    expect(q.wasAddr).toEqual([]);
    expect(q.text.endsWith("env.Append(CXXFLAGS='-DM5OP_ADDR=0x10010000')\nenv.Append(CCFLAGS='-DM5OP_ADDR=0x10010000')\n")).toBe(true);
    // An addr call type with no sources of its own still becomes the default.
    expect(patchArm64Opts("env['CALL_TYPE']['addr'].impl()\n", 1).text).toContain("env['CALL_TYPE']['addr'].impl(default=True)");
  });

  it('refuses a tree with no address call type (QEMU cannot answer the instruction)', () => {
    const noAddr = OPTS.split('\n').filter((l) => !l.includes("['addr']")).join('\n');
    expect(() => patchArm64Opts(noAddr, 0x10010000)).toThrow(/has no address call type/);
  });
});
