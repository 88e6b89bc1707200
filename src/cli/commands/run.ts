/** `m5dev run`: boot a disk image whose own init runs the job through m5ops (gem5-resources' protocol); its console on stdout, the guest's code as ours. */
import { Command, Option } from 'commander';
import { accessSync, constants, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { copySparse } from '../../sparse-copy.js';
import { writeWhole } from '../../staging.js';
import type { Storage } from '../../engine/storage.js';
import { jobToJunit } from '../../module/junit.js';
import { jobFailure } from '../../m5ops/job.js';
import { dirname, join, resolve } from 'node:path';
import { DEFAULTS, capResources, hex, hostResources, loadUserConfig, parseIntOption, parseMemory, parseConfig, resolveConfig, type VmConfig } from '../../config.js';
import { layout } from '../../paths.js';
import { validateName, STORED } from '../../vm/instance.js';
import { cleanupScope } from '../../cleanup.js';
import { describeEvent, exitStatus } from '../../m5ops/ops.js';
import { listrReporter, printJson } from '../ui.js';
import { globalOpts, instanceLock } from '../options.js';
import { annotateError, guestStream } from '../annotations.js';
import { CopyError, UsageError } from '../../errors.js';
import { DEFAULT_MAX_CHECKPOINTS, parseCheckpointRef } from '../../workflows/checkpoint.js';
import type { RunRequest } from '../../workflows/run.js';
import { M5OPS_STORED } from '../../workflows/m5ops.js';

interface RunFlags {
  disk?: string;
  fromCheckpoint?: string;
  name: string;
  kernel?: string;
  append?: string;
  exits: string;
  timeout: string;
  out?: string;
  cpus?: string;
  memory?: string;
  cpu?: string;
  accel?: string;
  tcgCache?: string;
  m5opsAddr?: string;
  m5opsReadfile?: string;
  m5opsStats?: string;
  m5opsParam?: string[];
  junit?: string;
  maxCheckpoints: string;
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description("boot a disk image that runs its job by itself (gem5-resources' images: no SSH, no cloud-init), stream its console, end at the guest's m5 fail or its Nth m5 exit, and exit with the guest's code")
    .option('--disk <image>', 'the disk image to boot (raw or qcow2; copied into the blob cache by content, never written: the guest writes a qcow2 overlay)')
    .option('--from-checkpoint <NAME:K>', "instead of --disk: resume the Kth checkpoint a guest of run NAME took with `m5 checkpoint` (`m5dev checkpoints --name NAME`), in this run's instance")
    .option('--name <name>', 'instance name', 'run')
    .option('--kernel <version>', 'direct-boot the kernel built by `m5dev kernel build --version <version>` with the image\'s root filesystem; an initramfs puts that kernel\'s modules (and gem5_bridge, the m5 module) at /lib/modules before the image\'s init runs (default: the image boots itself through UEFI)')
    .option('--append <args>', 'the directly booted kernel\'s command line (default "rw console=ttyAMA0": the first partition holding /sbin/init is the root; root=/dev/vdaN chooses one, ro mounts it read-only, init=PATH runs another init)')
    .option('--exits <n>', "the guest's m5 exit that ends the job (gem5-resources' images exit once booted, then again when their script is done: 2)", '1')
    .option('--timeout <seconds>', 'give up after this long (exit 23)', '3600')
    .option('--junit <file>', "also write the job's end as JUnit XML (one testcase, failed when m5dev's exit code is not 0: a fail with a code, a panic, a timeout; the console as system-out), whatever ended it")
    .option('--max-checkpoints <n>', "save at most this many of the guest's checkpoints (each holds its memory and disk overlay); later ones are let go, each said", String(DEFAULT_MAX_CHECKPOINTS))
    .option('--out <dir>', "copy what the guest wrote (m5out: writefile's files, stats.txt) and its console (system.terminal) to DIR when the job ends")
    .option('--cpus <n>', `vCPUs (default ${DEFAULTS.cpus})`)
    .option('--memory <size>', `guest memory, e.g. 2048, 4G (default ${DEFAULTS.memoryMiB} MiB)`)
    .option('--cpu <model>', 'QEMU -cpu model (default cortex-a57 under TCG, host under KVM)')
    .addOption(new Option('--accel <accel>', 'accelerator').choices(['auto', 'kvm', 'tcg']))
    .option('--tcg-cache <MiB>', `under TCG, QEMU's translated-code cache (default ${DEFAULTS.tcgCacheMiB})`)
    .option('--m5ops-addr <addr>', `guest-physical base of the m5ops range (default ${hex(DEFAULTS.m5opsAddr)}, gem5's on Arm)`)
    .option('--m5ops-readfile <file>', "what the guest's `m5 readfile` reads (gem5-resources' images run it as their script)")
    .option('--m5ops-param <KEY=VALUE>', "what the guest's `m5 initparam KEY` reads (KEY up to 16 characters; an empty KEY is gem5's default init_param; repeatable; unknown keys read 0)", (v: string, acc: string[] = []) => [...acc, v])
    .addOption(new Option('--m5ops-stats <what>', "what dump_stats writes to m5out/stats.txt: the clocks, or also the instructions run").choices(['clock', 'insns']))
    .action(async (flags: RunFlags, cmd: Command) => {
      const g = globalOpts(cmd);
      const name = validateName(flags.name);
      if ((flags.disk === undefined) === (flags.fromCheckpoint === undefined)) {
        throw new UsageError('run boots --disk IMAGE or --from-checkpoint NAME:K (one of them)', 'e.g. m5dev run --disk gem5-arm64.img --exits 2');
      }
      const from: RunRequest['from'] = flags.disk !== undefined ? { disk: flags.disk } : { checkpoint: parseCheckpointRef(flags.fromCheckpoint ?? '') };
      if ('checkpoint' in from && from.checkpoint.name === name) throw new UsageError(`--from-checkpoint ${flags.fromCheckpoint} restores into a run of another name`, `Give this run its own --name (the checkpoints of ${name} are replaced when it runs again).`);
      const exits = parseIntOption(flags.exits, '--exits', 1, 1000);
      const maxCheckpoints = parseIntOption(flags.maxCheckpoints, '--max-checkpoints', 0, 1000);
      // Where the results go is checked before anything boots (not after an hour's job).
      if (flags.out) writableDir(flags.out, '--out', true);
      if (flags.junit) writableDir(dirname(resolve(flags.junit)), '--junit', false);
      const timeoutSec = parseIntOption(flags.timeout, '--timeout', 1, 7 * 86400);
      const home = layout();
      const fromFlags = parseConfig(
        {
          cpus: flags.cpus,
          memoryMiB: flags.memory === undefined ? undefined : parseMemory(flags.memory),
          cpu: flags.cpu,
          accel: flags.accel,
          tcgCacheMiB: flags.tcgCache,
          m5opsAddr: flags.m5opsAddr,
          m5opsReadfile: flags.m5opsReadfile,
          m5opsStats: flags.m5opsStats,
          m5opsParams: flags.m5opsParam,
        },
        'command line',
      );
      // The user's own config is trusted; what a job asks of the machine is capped to this host's, as up's is.
      const capped = capResources(fromFlags, hostResources(home.root), 'the command line');
      for (const n of capped.notes) process.stderr.write(`m5dev: ${n}\n`);
      const config = resolveConfig(capped.config, {}, loadUserConfig(home.root));
      const explicit = new Set(Object.keys(fromFlags) as (keyof VmConfig)[]);
      const [{ startJob, watchJob }, { ensureToolchain, toolchainRequest }] = await Promise.all([import('../../workflows/run.js'), import('../../workflows/image-build.js')]);
      const console = g.json ? process.stderr : process.stdout;
      const result = await instanceLock(cmd, name, async () => {
        const report = listrReporter(g);
        const toolchain = await ensureToolchain(report, toolchainRequest(config.baseImage));
        await using scope = cleanupScope(`run ${name}`);
        const started = Date.now();
        const running = await startJob(report, toolchain, { name, home, config, explicit, from, kernelVersion: flags.kernel, append: flags.append, exits }, scope);
        const stream = guestStream();
        const checkpoints: number[] = [];
        console.write(stream.open);
        // The console for the JUnit report: its last JUNIT_CONSOLE bytes (a guest may print without end).
        let text = '';
        const end = await watchJob(running, {
          exits,
          timeoutMs: timeoutSec * 1000,
          onConsole: (t) => {
            if (flags.junit) text = (text + t).slice(-JUNIT_CONSOLE);
            console.write(t);
          },
          onExit: (n) => !g.quiet && process.stderr.write(`m5dev: guest m5 exit ${n} of ${exits}\n`),
          maxCheckpoints,
          onCheckpointSkipped: (index, why) => !g.quiet && process.stderr.write(`m5dev: checkpoint ${index} not saved: ${why}; the guest runs on\n`),
          onCheckpoint: (c) => {
            checkpoints.push(c.index);
            if (!g.quiet) process.stderr.write(`m5dev: checkpoint ${c.index} saved (the guest stood still ${c.pauseMs} ms): m5dev run --from-checkpoint ${name}:${c.index} --name NEW\n`);
          },
        })
          .catch((e: unknown) => {
            if (flags.junit) writeJobJunit(flags.junit, name, text, (Date.now() - started) / 1000, (e as Error).message);
            throw e;
          })
          .finally(() => console.write(stream.close));
        if (flags.junit) writeJobJunit(flags.junit, name, text, (Date.now() - started) / 1000, jobFailure(end));
        const seconds = (Date.now() - started) / 1000;
        await running.vm.remove();
        const storage = running.found.placement.storage;
        if (flags.out) {
          await copyOut(storage, flags.out);
        }
        return { name, end, seconds, out: flags.out ?? null, checkpoints };
      });
      const code = result.end.kind === 'exit' ? 0 : exitStatus(result.end.code);
      if (g.json) printJson({ name, ended: result.end.kind, code: result.end.code, exitStatus: code, event: result.end.event, seconds: result.seconds, out: result.out, checkpoints: result.checkpoints });
      else if (!g.quiet) process.stderr.write(`m5dev: job ended in ${result.seconds.toFixed(1)} s: ${describeEvent(result.end.event)}\n`);
      if (code !== 0) annotateError(`guest m5 ${result.end.kind} (exit ${code})`, describeEvent(result.end.event), { json: g.json });
      process.exitCode = code;
    });
}

export function registerCheckpoints(program: Command): void {
  program
    .command('checkpoints')
    .description("the checkpoints a guest took with `m5 checkpoint` under run, or under up --m5ops-checkpoints (resume one with `m5dev run|up --from-checkpoint NAME:K`)")
    .option('--name <name>', 'instance name', 'run')
    .action(async (opts: { name: string }, cmd: Command) => {
      const g = globalOpts(cmd);
      const [{ openOnEngine }, { listCheckpoints }] = await Promise.all([import('../../workflows/running.js'), import('../../workflows/checkpoint.js')]);
      const { storage } = await openOnEngine(opts.name);
      const list = await listCheckpoints(storage);
      if (g.json) printJson(list);
      else for (const c of list) process.stdout.write(`${opts.name}:${c.index}  ${c.takenAt}  guest clock ${(c.vclockNs / 1e9).toFixed(3)} s  paused ${c.pauseMs} ms\n`);
    });
}

/** How much of the console the JUnit report keeps (its end). */
const JUNIT_CONSOLE = 1 << 20;
/** The console's name in --out, gem5's (system.terminal). */
const TERMINAL = 'system.terminal';

/** The job's report as JUnit XML, written whole (a temporary file of its own, renamed into place). */
function writeJobJunit(file: string, name: string, consoleText: string, seconds: number, failure: string | undefined): void {
  const xml = jobToJunit({ suite: `m5dev run ${name}`, classname: `m5dev.run.${name.replace(/[^A-Za-z0-9_]/g, '_')}`, name: 'job', timestamp: new Date().toISOString().replace(/\.\d+Z$/, ''), seconds, console: consoleText, failure });
  writeWhole(file, xml);
}

/** A directory the results can go to (made when asked), or a usage error now. */
function writableDir(dir: string, flag: string, make: boolean): void {
  try {
    if (make) mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw new UsageError(`${flag}: cannot write to ${dir} (${(e as Error).message})`, `Give ${flag} a directory you can write to.`);
  }
}

/**
 * m5out and the console into DIR. The console goes last, as system.terminal, in place of anything the
 * guest wrote under that name (a file or a directory of m5out), never through a link.
 */
async function copyOut(storage: Storage, dir: string): Promise<void> {
  try {
    if ((await storage.listTree(M5OPS_STORED.out)).length) await storage.exportTree(M5OPS_STORED.out, dir);
    const terminal = join(dir, TERMINAL);
    rmSync(terminal, { recursive: true, force: true });
    const local = storage.clientPath(STORED.console);
    if (local && existsSync(local)) copySparse(local, terminal);
    else writeFileSync(terminal, (await storage.read(STORED.console)) ?? '', { flag: 'wx' });
  } catch (e) {
    throw new CopyError(`copying the job's results to ${dir} failed: ${(e as Error).message}`, '', 'They are still in the instance: `m5dev m5ops out DIR --name NAME`, and its console.log.');
  }
}
