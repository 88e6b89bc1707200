/**
 * `m5dev m5 install --gem5 TREE`: gem5's own m5 utility in the guest, as gem5-resources' images
 * have it. util/m5 is built with SCons in a builder image (the toolchain plus SCons), in a confined
 * container of its own, from a copy of the tree's util/m5 and include/ whose arm64 SConsopts make
 * the address call type the default at the instance's m5ops base (gem5/m5-tree.ts); the build is
 * cached by content, then installed in the guest over SSH.
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus } from 'node:os';
import { PACKAGE_ROOT } from '../assets.js';
import { hashFiles } from '../docker/build-context.js';
import { LABELS } from '../docker/labels.js';
import { CopyError, M5BuildError } from '../errors.js';
import { ARM64_OPTS, gem5Sources, patchArm64Opts } from '../gem5/m5-tree.js';
import { CROSS } from '../kernel/build-spec.js';
import type { HomeLayout } from '../paths.js';
import { scriptCommand } from '../scripts.js';
import type { GuestSsh } from '../ssh/client.js';
import { guestScript } from '../ssh/guest-command.js';
import { publishDir } from '../staging.js';
import { toolchainIdentity, type Toolchain } from './image-build.js';
import { buildUser } from './module.js';
import type { Reporter } from './report.js';

const BUILDER_CONTEXT = join(PACKAGE_ROOT, 'builders', 'gem5-m5');
const TREE_IN_CONTAINER = '/gem5';
const RECORD = 'm5dev-gem5-m5.json';
/** Where gem5-resources' images have each file, under the build's directory and in the guest. */
export const GEM5_M5_FILES = { bridge: 'usr/local/bin/gem5-bridge', lib: 'usr/local/lib/libm5.a', include: 'usr/local/include/gem5' } as const;

export interface Gem5M5Request {
  home: HomeLayout;
  /** The gem5 checkout. */
  tree: string;
  /** The instance's m5ops base: M5OP_ADDR of the build. */
  addr: number;
  jobs?: number;
}

/** What a build made (its record, kept beside it). */
export interface Gem5M5Build {
  dir: string;
  tree: string;
  addr: string;
  /** The call types the tree made the default (the build's is always addr). */
  treeDefault: string[];
  /** The M5OP_ADDR values the tree set. */
  treeAddr: string[];
}

/** A build of `tree` (checked with checkGem5Tree first). */
export function gem5M5Request(home: HomeLayout, tree: string, addr: number, jobs?: number): Gem5M5Request {
  return { home, tree, addr, jobs };
}

/** The toolchain image plus SCons, built on demand (a tag of its own: the toolchain's tag is untouched). */
export async function ensureGem5Builder(report: Reporter, toolchain: Toolchain): Promise<string> {
  const dockerfile = readFileSync(join(BUILDER_CONTEXT, 'Dockerfile'));
  const tag = `m5dev/gem5-m5-builder:${createHash('sha256').update(toolchain.imageId).update('\0').update(dockerfile).digest('hex').slice(0, 16)}`;
  const images = toolchain.engine.images;
  if (await images.id(tag)) {
    await report.skipped('SCons in a builder image on the toolchain', `cached: ${tag}`);
    return tag;
  }
  return report.step('SCons in a builder image on the toolchain', async (s) => {
    await images.build({ contextDir: BUILDER_CONTEXT, tag, buildArgs: { TOOLCHAIN: toolchain.tag }, labels: { [LABELS.managed]: 'true' }, onLine: (l) => s.output(l) });
    s.title(`Builder image ${tag} (the toolchain and SCons)`);
    return tag;
  });
}

/** util/m5 built for the instance's base (cached by the sources, the toolchain and the base). */
export async function buildGem5M5(report: Reporter, toolchain: Toolchain, req: Gem5M5Request): Promise<{ build: Gem5M5Build; cached: boolean }> {
  const builder = await ensureGem5Builder(report, toolchain);
  return report.step("Build gem5's util/m5 for arm64 (scons build/arm64/out/m5)", async (s) => {
    const sources = gem5Sources(req.tree);
    const addr = `0x${req.addr.toString(16)}`;
    const key = hashFiles(req.tree, sources, { toolchain: toolchainIdentity(toolchain), builder, addr });
    const dir = join(req.home.root, 'gem5-m5', key.slice(0, 24));
    if (existsSync(join(dir, RECORD))) {
      const build = JSON.parse(readFileSync(join(dir, RECORD), 'utf8')) as Gem5M5Build;
      s.skip(`cached: these sources are already built for M5OP_ADDR ${addr}`);
      return { build, cached: true };
    }
    const opts = patchArm64Opts(readFileSync(join(req.tree, ARM64_OPTS), 'utf8'), req.addr);
    const user = buildUser();
    const build = await publishDir(dir, 'partial gem5 m5 build', async (partial) => {
      const out = join(partial, 'out');
      mkdirSync(out);
      const files = sources.map((rel) => ({ name: `${TREE_IN_CONTAINER.slice(1)}/${rel}`, data: rel === ARM64_OPTS ? Buffer.from(opts.text) : readFileSync(join(req.tree, rel)) }));
      // The tree's code (its SConstruct is Python) runs as the invoking user, with no capability,
      // network or mount: sources in and results out as tar streams (ToolRun.confined).
      await toolchain.engine.runTool({
        image: builder,
        cmd: scriptCommand('gem5M5Build', [TREE_IN_CONTAINER, String(req.jobs ?? cpus().length), CROSS.CROSS_COMPILE]),
        binds: [],
        home: req.home.root,
        description: "Building gem5's m5",
        confined: user,
        before: (box) => box.putFiles('/', files, user),
        after: (box) => box.getTree(`${TREE_IN_CONTAINER}/util/m5/build/arm64/out`, out),
        onLine: (l) => s.output(l),
        failure: (message, output) => new M5BuildError(message, output),
      });
      checkArm64Program(join(out, 'm5'));
      if (!existsSync(join(out, 'libm5.a'))) throw new M5BuildError('the build made no libm5.a', '', 'Check that the tree builds libm5.a beside build/arm64/out/m5, as gem5\'s util/m5 does.');
      // Laid out as the guest gets it: gem5-bridge (gem5-resources' name for m5), libm5.a, the headers.
      for (const f of [GEM5_M5_FILES.bridge, GEM5_M5_FILES.lib]) mkdirSync(join(partial, f, '..'), { recursive: true });
      renameSync(join(out, 'm5'), join(partial, GEM5_M5_FILES.bridge));
      renameSync(join(out, 'libm5.a'), join(partial, GEM5_M5_FILES.lib));
      cpSync(join(req.tree, 'include', 'gem5'), join(partial, GEM5_M5_FILES.include), { recursive: true, dereference: false, filter: (src) => !src.endsWith('.sconsign') });
      const made: Gem5M5Build = { dir, tree: req.tree, addr, treeDefault: opts.wasDefault, treeAddr: opts.wasAddr };
      writeFileSync(join(partial, RECORD), `${JSON.stringify(made, null, 2)}\n`);
      return made;
    });
    s.title(`Built gem5's m5 and libm5.a: the address call type by default, M5OP_ADDR ${addr}${build.treeDefault.includes('addr') ? '' : ` (the tree's default was ${build.treeDefault.join(', ') || 'none'})`}`);
    return { build, cached: false };
  });
}

/** An aarch64 ELF executable, or the build is not what the guest can run. */
function checkArm64Program(file: string): void {
  if (!existsSync(file)) throw new M5BuildError('the build made no build/arm64/out/m5', '', 'Check that the tree\'s util/m5 builds the target build/arm64/out/m5, as gem5\'s does.');
  const head = readFileSync(file).subarray(0, 20);
  if (head.subarray(0, 4).toString('latin1') !== '\x7fELF' || head.readUInt16LE(18) !== 183) {
    throw new M5BuildError('build/arm64/out/m5 is not an arm64 program', '', 'Check the tree\'s arm64 SConsopts (CROSS_COMPILE): m5dev passes arm64.CROSS_COMPILE for the toolchain\'s compiler.');
  }
}

/** Into the guest as gem5-resources' images have them: gem5-bridge setuid root, m5 a link to it, libm5.a, the headers. */
export async function installGem5M5(report: Reporter, ssh: GuestSsh, build: Gem5M5Build): Promise<void> {
  await report.step('Install m5, gem5-bridge, libm5.a and the gem5 headers in the guest', async (s) => {
    const tar = await import('tar-fs');
    const input = tar.pack(build.dir, { entries: ['usr'] }) as unknown as NodeJS.ReadableStream;
    const res = await ssh.pipe(guestScript('installGem5M5', [], { root: true }), { input });
    if (res.exitCode !== 0) throw new CopyError("installing gem5's m5 in the guest failed", res.stderr);
    s.title('Installed /usr/local/bin/m5 → gem5-bridge (setuid root), /usr/local/lib/libm5.a, /usr/local/include/gem5');
  });
}
