/** `m5dev module build|load|test`: the edit → build → load → test loop against the booted kernel. */
import type { Command } from 'commander';
import { writeWhole } from '../../staging.js';
import { basename, resolve } from 'node:path';
import { tapToJunit } from '../../module/junit.js';
import { annotateError, guestBlock } from '../annotations.js';
import { DEFAULTS } from '../../config.js';
import { layout } from '../../paths.js';
import { MODULE_DIR } from '../../assets.js';
import { UsageError } from '../../errors.js';
import { DEFAULT_KERNEL_VERSION } from '../../kernel/source.js';
import { paramsForInstance, parseModuleParams, tapPassed } from '../../module/artifacts.js';
import { liveInstance } from '../../workflows/running.js';
import type { TapRun } from '../../workflows/module.js';
import { globalOpts } from '../options.js';
import { listrReporter, printJson } from '../ui.js';

interface ModuleFlags {
  name: string;
  kernel?: string;
  src?: string;
  param: string[];
  baseImage: string;
  junit?: string;
}

const collect = (v: string, prev: string[]) => [...prev, v];

function common(cmd: Command, withInstance: boolean): Command {
  cmd
    .option('--src <dir>', 'module source directory: any Kbuild tree (obj-m), default the m5 module in module/')
    .option('--base-image <ref>', 'toolchain base image', DEFAULTS.baseImage);
  if (withInstance) {
    cmd
      .option('--name <name>', 'instance name', 'default')
      .option('--kernel <version>', 'kernel version to build against (default: the one the instance booted)')
      .option('--param <name=value>', 'module parameter for insmod (repeatable)', collect, []);
  } else {
    cmd.option('--kernel <version>', 'kernel version to build against', DEFAULT_KERNEL_VERSION);
  }
  return cmd;
}

/** The module test's report as JUnit XML, written whole (a temporary file renamed into place). */
function writeJunit(file: string, tap: string, src: string, seconds: number, outcome: { exitCode: number; passed: boolean }): void {
  const xml = tapToJunit(tap, { suite: `m5dev module test ${basename(src)}`, classname: `m5dev.module.${basename(src).replace(/[^A-Za-z0-9_]/g, '_')}`, timestamp: new Date().toISOString().replace(/\.\d+Z$/, ''), seconds, outcome });
  writeWhole(file, xml);
}

export function registerModule(program: Command): void {
  const mod = program.command('module').description('build, load and test the kernel module against the built kernel');

  common(mod.command('build').description('cross-compile the module (and its test) against the cached kernel tree'), false).action(
    async (f: ModuleFlags, cmd: Command) => {
      const g = globalOpts(cmd);
      const home = layout();
      const [{ buildModule, moduleRequest }, { ensureToolchain, toolchainRequest }] = await Promise.all([import('../../workflows/module.js'), import('../../workflows/image-build.js')]);
      const req = moduleRequest(home, f.kernel ?? DEFAULT_KERNEL_VERSION, resolve(f.src ?? MODULE_DIR));
      const report = listrReporter(g);
      const done = await buildModule(report, await ensureToolchain(report, toolchainRequest(f.baseImage)), req);
      if (g.json) printJson({ ...done.build, cached: done.cached });
      else process.stdout.write(`${done.build.modules.map((m) => `${done.build.dir}/${m}`).join('\n')}\n  vermagic ${done.build.vermagic}\n`);
    },
  );

  const inGuest = async (f: ModuleFlags, cmd: Command, test: boolean) => {
    const g = globalOpts(cmd);
    const params = parseModuleParams(f.param);
    const live = await liveInstance(f.name);
    const version = f.kernel ?? live.state.kernelVersion;
    if (!version) {
      throw new UsageError(`instance ${f.name} runs its image's own kernel`, `Boot a built kernel: \`m5dev down\`, then \`m5dev up --kernel ${DEFAULT_KERNEL_VERSION}\` (after \`m5dev kernel build\`).`);
    }
    const [{ loadModule, moduleRequest, testModule }, { ensureToolchain, toolchainRequest }] = await Promise.all([import('../../workflows/module.js'), import('../../workflows/image-build.js')]);
    // Loaded for the instance's m5ops range (up --m5ops-addr) unless the user named the base.
    const req = moduleRequest(live.home, version, resolve(f.src ?? MODULE_DIR), paramsForInstance(params, live.state.m5ops?.addr, DEFAULTS.m5opsAddr));
    const report = listrReporter(g);
    const started = Date.now();
    const loaded = await loadModule(report, await ensureToolchain(report, toolchainRequest(f.baseImage)), req, live.ssh);
    let tap: TapRun | undefined;
    if (test) {
      // The report is written whether the test passed or not (a failing one is when CI needs it),
      // once the guest's TAP is in: each failed check is also a GitHub annotation.
      await testModule(report, live.ssh, req, loaded.built, (run) => {
        tap = run;
        const outcome = { exitCode: run.exitCode, passed: tapPassed(run.summary) };
        if (f.junit) writeJunit(f.junit, run.text, req.srcDir, (Date.now() - started) / 1000, outcome);
        for (const check of run.summary.failed) annotateError('module test', `not ok - ${check}`, { json: g.json });
      });
    }
    const b = loaded.built;
    if (g.json) printJson({ ...b.build, cached: b.cached, loadLog: loaded.log, ...loaded.report, test: tap?.summary ?? null });
    else if (test) process.stdout.write(guestBlock(tap?.text ?? ''));
    else {
      const l = loaded.report;
      process.stdout.write(`${loaded.log}${[...l.devices.map((d) => `device ${d}`), ...Object.entries(l.parameters).map(([k, v]) => `parameter ${k} = ${v}`)].join('\n')}\n`);
    }
  };

  common(mod.command('load').description('build if needed, copy the module into the running guest and insmod it'), true).action((f: ModuleFlags, cmd: Command) =>
    inGuest(f, cmd, false),
  );
  common(mod.command('test').description('build, load, run the user-space test in the guest as the unprivileged user, unload'), true)
    .option('--junit <file>', 'also write the test\'s TAP as JUnit XML (one testcase per check, the guest\'s output as system-out), pass or fail')
    .action((f: ModuleFlags, cmd: Command) => inGuest(f, cmd, true));
}
