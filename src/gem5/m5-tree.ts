/**
 * A gem5 checkout as `m5dev m5 install --gem5` reads it: whether it is one, which of its files the
 * build of util/m5 needs (as gem5-resources' sparse clone has them: util/m5 and include), and its
 * arm64 SConsopts made to build the address call type as the default at the instance's m5ops base.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../errors.js';

/** What the build reads: without each, PATH is not a gem5 tree m5dev can build util/m5 from. */
export const GEM5_MARKERS = ['util/m5/SConstruct', 'util/m5/src/abi/arm64/SConsopts', 'include/gem5/m5ops.h'] as const;
export const ARM64_OPTS = 'util/m5/src/abi/arm64/SConsopts';
/** At most this much of the tree goes into the build (gem5's util/m5 and include are a few MiB). */
export const MAX_TREE_BYTES = 64 * 1024 * 1024;

export function checkGem5Tree(dir: string, exists: (rel: string) => boolean): void {
  const missing = GEM5_MARKERS.filter((m) => !exists(m));
  if (missing.length) {
    throw new UsageError(
      `${dir} is not a gem5 tree: no ${missing.join(', no ')}`,
      'Point --gem5 at a gem5 checkout (git clone https://github.com/gem5/gem5), the directory holding util/ and include/.',
    );
  }
}

/**
 * The regular files under util/m5 (not its build/ output, nor SCons' own state) and include/, as
 * POSIX paths relative to the tree. Links are not followed (a link is not a file of this tree).
 */
export function gem5Sources(dir: string): string[] {
  const out: string[] = [];
  let bytes = 0;
  const walk = (rel: string) => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const r = `${rel}/${e.name}`;
      if (r === 'util/m5/build' || e.name.startsWith('.sconsign')) continue;
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) {
        bytes += lstatSync(join(dir, r)).size;
        if (bytes > MAX_TREE_BYTES) throw new UsageError(`${dir}'s util/m5 and include hold more than ${MAX_TREE_BYTES >> 20} MiB`, 'Point --gem5 at a gem5 checkout (its util/m5 and include are a few MiB).');
        out.push(r);
      }
    }
  };
  walk('util/m5');
  walk('include');
  return out.sort();
}

export interface PatchedOpts {
  text: string;
  /** The call types the tree marked default before. */
  wasDefault: string[];
  /** The M5OP_ADDR values the tree set (none: gem5 before it had one). */
  wasAddr: string[];
}

const IMPL = /^(\s*env\['CALL_TYPE'\]\['(\w+)'\]\.impl\()(.*)\)\s*$/;
const DEFAULT_ARG = /\s*,?\s*default\s*=\s*True\s*/;
const ADDR_DEFINE = /-DM5OP_ADDR=([^'"\s\]]*)/g;

/**
 * The arm64 SConsopts with the address call type the default (gem5's own default on arm64 is the
 * m5op instruction, which QEMU cannot answer) and M5OP_ADDR set to `addr`, where the tree sets it
 * or, when it does not, appended as gem5 does.
 */
export function patchArm64Opts(text: string, addr: number): PatchedOpts {
  const hex = `0x${addr.toString(16)}`;
  const wasDefault: string[] = [];
  let hasAddr = false;
  const lines = text.split('\n').map((line) => {
    const m = IMPL.exec(line);
    if (!m) return line;
    const [, head, name, args] = m as unknown as [string, string, string, string];
    if (DEFAULT_ARG.test(args)) wasDefault.push(name);
    const plain = args.replace(DEFAULT_ARG, '').trim();
    if (name !== 'addr') return `${head}${plain})`;
    hasAddr = true;
    return `${head}${plain === '' ? '' : `${plain}, `}default=True)`;
  });
  if (!hasAddr) {
    throw new UsageError(
      `this gem5 tree's ${ARM64_OPTS} has no address call type (env['CALL_TYPE']['addr'])`,
      'QEMU answers m5ops only at an address: use a gem5 release from v21 on, whose util/m5 has the addr call type.',
    );
  }
  const wasAddr = [...text.matchAll(ADDR_DEFINE)].map((m) => m[1] ?? '');
  let out = lines.join('\n').replace(ADDR_DEFINE, `-DM5OP_ADDR=${hex}`);
  if (wasAddr.length === 0) out = `${out.replace(/\n*$/, '\n')}env.Append(CXXFLAGS='-DM5OP_ADDR=${hex}')\nenv.Append(CCFLAGS='-DM5OP_ADDR=${hex}')\n`;
  return { text: out, wasDefault, wasAddr };
}
