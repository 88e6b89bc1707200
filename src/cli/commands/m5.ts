/** `m5dev m5 install --gem5 TREE`: gem5's own m5 utility in the running guest (workflows/gem5-m5.ts). */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { checkGem5Tree } from '../../gem5/m5-tree.js';
import { DEFAULTS, parseIntOption } from '../../config.js';
import { liveInstance } from '../../workflows/running.js';
import { globalOpts } from '../options.js';
import { listrReporter, printJson } from '../ui.js';

interface InstallFlags {
  gem5: string;
  name: string;
  baseImage: string;
  jobs?: string;
}

export function registerM5(program: Command): void {
  const m5 = program.command('m5').description("gem5's own m5 utility in the guest (gem5's util/m5, as gem5-resources' images install it)");
  m5.command('install')
    .description("build gem5's util/m5 from a gem5 checkout for the instance's m5ops base (the address call type made the default) and install m5, gem5-bridge, libm5.a and gem5's headers in the guest")
    .requiredOption('--gem5 <path>', 'a gem5 checkout (the directory holding util/m5 and include/gem5)')
    .option('--name <name>', 'instance name', 'default')
    .option('--base-image <ref>', 'toolchain base image', DEFAULTS.baseImage)
    .option('--jobs <n>', 'parallel SCons jobs (default: number of CPUs)')
    .action(async (f: InstallFlags, cmd: Command) => {
      const g = globalOpts(cmd);
      const jobs = f.jobs === undefined ? undefined : parseIntOption(f.jobs, '--jobs', 1, 256);
      const [{ GEM5_M5_FILES, buildGem5M5, gem5M5Request, installGem5M5 }, { ensureToolchain, toolchainRequest }] = await Promise.all([import('../../workflows/gem5-m5.js'), import('../../workflows/image-build.js')]);
      const tree = resolve(f.gem5);
      checkGem5Tree(tree, (rel) => existsSync(join(tree, rel)));
      const live = await liveInstance(f.name);
      const addr = live.state.m5ops?.addr ?? DEFAULTS.m5opsAddr;
      const req = gem5M5Request(live.home, tree, addr, jobs);
      const report = listrReporter(g);
      const { build, cached } = await buildGem5M5(report, await ensureToolchain(report, toolchainRequest(f.baseImage)), req);
      await installGem5M5(report, live.ssh, build);
      const installed = { m5: '/usr/local/bin/m5', gem5Bridge: `/${GEM5_M5_FILES.bridge}`, libm5: `/${GEM5_M5_FILES.lib}`, include: `/${GEM5_M5_FILES.include}` };
      if (g.json) printJson({ ...build, cached, installed });
      else process.stdout.write(`${installed.m5} → ${installed.gem5Bridge} (M5OP_ADDR ${build.addr}, the address call type by default)\n${installed.libm5}\n${installed.include}\n`);
    });
}
