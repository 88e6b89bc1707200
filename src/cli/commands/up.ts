/** `m5dev up`: Prepare (cached artefacts) then Start (QEMU in its container) and wait for SSH. */
import { Command, Option } from 'commander';
import { CODE_SETTINGS, DEFAULTS, capResources, hex, hostResources, loadConfigFile, loadUserConfig, parseConfig, parseMemory, parseTrustList, resolveConfig, type VmConfig } from '../../config.js';
import { instanceDir, layout } from '../../paths.js';
import { join } from 'node:path';
import { ensureCheckpointAgent } from './checkpoint-agent.js';
import { parseCheckpointRef } from '../../workflows/checkpoint.js';
import { instanceFromCheckpoint } from '../../workflows/up/from-checkpoint.js';
import { AGENT_FILES } from '../../workflows/checkpoint-agent.js';
import type { UpRequest } from '../../workflows/up.js';
import { listrReporter, printJson } from '../ui.js';
import { globalOpts, instanceLock } from '../options.js';
import { validateName, type InstanceState } from '../../vm/instance.js';
import { UsageError } from '../../errors.js';

interface UpFlags {
  /** One or more (--name repeated): several instances start at once. */
  name?: string[];
  imageUrl?: string;
  imageSha256?: string;
  disk?: string;
  diskGrow?: string;
  sshPort?: string;
  cpus?: string;
  memory?: string;
  cpu?: string;
  accel?: string;
  bootTimeout?: string;
  baseImage?: string;
  kernel?: string;
  ramFile?: boolean;
  tcgCache?: string;
  share?: string[];
  m5opsAddr?: string;
  m5opsReadfile?: string;
  m5opsExit?: string;
  m5opsStats?: string;
  m5opsParam?: string[];
  m5opsCheckpoints?: boolean;
  fromCheckpoint?: string;
  trustConfig?: string;
  resume: boolean;
}

export function flagsToConfig(f: UpFlags): Partial<VmConfig> {
  return parseConfig(
    {
      imageUrl: f.imageUrl,
      imageSha256: f.imageSha256,
      disk: f.disk,
      diskGrow: f.diskGrow,
      sshPort: f.sshPort,
      cpus: f.cpus,
      memoryMiB: f.memory === undefined ? undefined : parseMemory(f.memory),
      cpu: f.cpu,
      accel: f.accel,
      bootTimeoutSec: f.bootTimeout,
      baseImage: f.baseImage,
      ramFile: f.ramFile,
      tcgCacheMiB: f.tcgCache,
      shares: f.share,
      m5opsAddr: f.m5opsAddr,
      m5opsReadfile: f.m5opsReadfile,
      m5opsExit: f.m5opsExit,
      m5opsStats: f.m5opsStats,
      m5opsParams: f.m5opsParam,
      m5opsCheckpoints: f.m5opsCheckpoints,
    },
    'command line',
  );
}

export function registerUp(program: Command): void {
  program
    .command('up')
    .description('boot the arm64 guest in its container and wait until SSH works')
    .option('--name <name>', 'instance name (default "default"); repeat it to start several instances at once', (v: string, acc: string[] = []) => [...acc, v])
    .option('--image-url <url>', `cloud image URL (default: Ubuntu 22.04 arm64 release-20240612)`)
    .option('--image-sha256 <hex>', 'pin the image digest (default: read SHA256SUMS beside the image)')
    .addOption(new Option('--disk <kind>', 'raw copy (as the seed) or qcow2 overlay on the cached base').choices(['raw', 'overlay']))
    .option('--disk-grow <size>', `grow the instance disk by (default ${DEFAULTS.diskGrow})`)
    .option('--ssh-port <port>', `host port on 127.0.0.1 for guest SSH (default ${DEFAULTS.sshPort}, next free one if taken)`)
    .option('--cpus <n>', `vCPUs (default ${DEFAULTS.cpus})`)
    .option('--memory <size>', `guest memory, e.g. 2048, 4G (default ${DEFAULTS.memoryMiB} MiB)`)
    .option('--cpu <model>', 'QEMU -cpu model (default cortex-a57 under TCG, host under KVM)')
    .addOption(new Option('--accel <accel>', 'accelerator').choices(['auto', 'kvm', 'tcg']))
    .option('--boot-timeout <seconds>', `seconds to wait for SSH (default ${DEFAULTS.bootTimeoutSec})`)
    .option('--base-image <ref>', `toolchain base image (default ${DEFAULTS.baseImage})`)
    .option('--kernel <version>', 'direct-boot the kernel built by `m5dev kernel build --version <version>`')
    .option('--ram-file', 'guest RAM is a file in the VM container\'s tmpfs, so `m5dev suspend`/`up` save and load only the device state and copy the RAM file (default)')
    .option('--no-ram-file', 'guest RAM is ordinary memory, saved whole into QEMU\'s migration stream on suspend (slower resume)')
    .option('--tcg-cache <MiB>', `under TCG, QEMU's translated-code cache (default ${DEFAULTS.tcgCacheMiB}; QEMU's own default is 1024, nearly all of it resident after a boot)`)
    .option('--share <HOST_DIR[:GUEST_PATH][:ro]>', 'mount a host directory in the guest, writable unless :ro (its .git stays read-only; repeatable; default guest path /home/ubuntu/<name>; replaces m5dev.json "shares", which are read-only); needs an engine that sees this machine\'s files', (v: string, acc: string[] = []) => [...acc, v])
    .option('--trust-config <settings>', `let ./m5dev.json set these settings that choose code (comma-separated: ${CODE_SETTINGS.join(', ')}); without it they are refused (exit 22)`)
    .option('--m5ops-addr <addr>', `guest-physical base of the m5ops range (64 KiB; default ${hex(DEFAULTS.m5opsAddr)}, gem5's on Arm)`)
    .option('--m5ops-readfile <file>', "what the guest's `m5 readfile` reads (copied in; `m5dev m5ops readfile FILE` replaces it while the guest runs)")
    .addOption(new Option('--m5ops-exit <policy>', "on the guest's m5 exit/fail: record it (continue, the default) or also power the VM off with its code").choices(['continue', 'poweroff']))
    .option('--m5ops-param <KEY=VALUE>', "what the guest's `m5 initparam KEY` reads (KEY up to 16 characters; an empty KEY is gem5's default init_param; repeatable; unknown keys read 0)", (v: string, acc: string[] = []) => [...acc, v])
    .addOption(new Option('--m5ops-stats <what>', "what the guest's dump_stats writes to m5out/stats.txt (gem5's format): the clocks (clock, the default), or also the instructions run (insns: simInsts; slower)").choices(['clock', 'insns']))
    .option('--m5ops-checkpoints', "the guest's `m5 checkpoint` is saved (the guest stands still meanwhile) by the instance's checkpoint agent, which up starts; without it the op is only logged")
    .option('--from-checkpoint <NAME:K>', 'a new instance (--name) from the Kth checkpoint of instance NAME (`m5dev checkpoints --name NAME`): it resumes where that guest was, with its keys, disk and settings')
    .option('--no-resume', 'boot afresh, discarding the memory saved by `m5dev suspend` (the disk was synced when it suspended)')
    .action(async (flags: UpFlags, cmd: Command) => {
      const g = globalOpts(cmd);
      const names = [...new Set((flags.name ?? ['default']).map(validateName))];
      const fromRef = flags.fromCheckpoint === undefined ? undefined : parseCheckpointRef(flags.fromCheckpoint);
      if (fromRef && (names.length !== 1 || !flags.name)) throw new UsageError('--from-checkpoint makes one new instance: name it with --name', `e.g. m5dev up --from-checkpoint ${flags.fromCheckpoint} --name again`);
      const fromFlags = flagsToConfig(flags);
      const home = layout();
      // A cloned repository's m5dev.json: what chooses code is refused unless trusted by name, and
      // the resources it asks for are capped to this host's (each cap printed).
      const capped = capResources(loadConfigFile(process.cwd(), parseTrustList(flags.trustConfig)), hostResources(home.root), 'm5dev.json');
      const fromFile = capped.config;
      for (const n of capped.notes) process.stderr.write(`m5dev: ${n}\n`);
      const config = resolveConfig(fromFlags, fromFile, loadUserConfig(home.root));
      // What the guest is given, and who said so: a cloned repository's m5dev.json is not trusted, so
      // what it sets is shown even with --quiet (which silences progress, not this).
      for (const s of config.shares) {
        if (!fromFlags.shares || !g.quiet) process.stderr.write(`m5dev: share ${s.host} → guest ${s.guest}, ${s.readOnly ? 'read-only' : 'writable'} (from ${fromFlags.shares ? 'the command line' : 'm5dev.json'})\n`);
      }
      if (!fromFlags.imageUrl && fromFile.imageUrl) process.stderr.write(`m5dev: m5dev.json sets the cloud image (trusted by --trust-config): ${fromFile.imageUrl}${fromFile.imageSha256 ? ` (sha256 ${fromFile.imageSha256})` : ''}\n`);
      if (!fromFlags.baseImage && fromFile.baseImage) process.stderr.write(`m5dev: m5dev.json sets the toolchain's base image (trusted by --trust-config): ${fromFile.baseImage}\n`);
      if (!fromFlags.m5opsReadfile && fromFile.m5opsReadfile) process.stderr.write(`m5dev: m5dev.json sets the m5ops readfile: ${fromFile.m5opsReadfile}\n`);
      const explicit = new Set(Object.keys(fromFlags) as (keyof VmConfig)[]);
      if (names.length > 1 && explicit.has('sshPort')) throw new UsageError('--ssh-port names one port, and several instances were asked for', 'Leave it out: each instance gets its own free port from 5555 up.');
      const [{ upInstance }, { ensureToolchain, toolchainRequest }] = await Promise.all([import('../../workflows/up.js'), import('../../workflows/image-build.js')]);
      // --m5ops-checkpoints: each such instance's checkpoint agent runs as soon as QEMU does (a guest that asks pauses until saved).
      const agents = new Map<string, number | null>();
      const whenRunning = (name: string) => async (state: InstanceState) => {
        if (!state.m5ops?.checkpoints) return;
        const pid = await ensureCheckpointAgent(home, name);
        agents.set(name, pid ?? null);
        if (pid === undefined) process.stderr.write(`m5dev: ${name}: the checkpoint agent did not start (see ${join(instanceDir(home, name), AGENT_FILES.log)}); a checkpoint the guest asks for will wait until \`m5dev up\` starts it\n`);
      };
      const requests: UpRequest[] = names.map((name) => ({
        whenRunning: whenRunning(name),
        name,
        home,
        config,
        explicit,
        kernelVersion: flags.kernel,
        noResume: !flags.resume,
        readfileWithin: !fromFlags.m5opsReadfile && fromFile.m5opsReadfile ? process.cwd() : undefined,
      }));
      // Every instance's lock first (in name order, so two such commands cannot deadlock), then the
      // toolchain image once, then the instances at once: one failing does not stop the others.
      const byName = [...names].sort((a, b) => a.localeCompare(b));
      const lockAll = <T>(i: number, fn: () => Promise<T>): Promise<T> => (i === byName.length ? fn() : instanceLock(cmd, byName[i] ?? '', () => lockAll(i + 1, fn)));
      const outcomes = await lockAll(0, async () => {
        const toolchain = await ensureToolchain(listrReporter(g), toolchainRequest(config.baseImage));
        const several = requests.length > 1;
        // --from-checkpoint: the new instance is made first (a suspended guest), then up resumes it as any other.
        const made = fromRef ? await instanceFromCheckpoint(listrReporter(g), toolchain, home, fromRef, names[0] ?? '') : undefined;
        return Promise.allSettled(requests.map((r) => upInstance(listrReporter({ ...g, prefix: several ? r.name : undefined }), toolchain, made ? { ...r, restore: made } : r)));
      });
      const failed = outcomes.flatMap((o, i) => (o.status === 'rejected' ? [{ name: names[i] ?? '', error: o.reason as unknown }] : []));

      for (const f of failed) if (names.length > 1 && !g.quiet) process.stderr.write(`m5dev: ${f.name}: ${(f.error as Error).message}\n`);
      const results = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : [])).map((r) => ({
        name: r.name,
        sshPort: r.sshPort,
        accel: r.state.accel,
        cpu: r.state.cpu,
        kernel: r.kernel?.release ?? null,
        shares: r.config.shares,
        bootSeconds: r.bootSeconds,
        alreadyRunning: r.alreadyRunning,
        resumed: r.resumed,
        notes: r.notes,
        container: r.vm.id,
        ...(agents.has(r.name) ? { checkpointAgent: agents.get(r.name) } : {}),
      }));
      if (g.json && (results.length || !failed.length)) printJson(names.length === 1 ? results[0] : results);
      else {
        for (const r of results) {
          process.stdout.write(`${r.name} is ${r.resumed ? 'resumed' : 'up'}: m5dev ssh${r.name === 'default' ? '' : ` --name ${r.name}`}  (127.0.0.1:${r.sshPort})\n`);
        }
      }
      if (failed[0]) throw failed[0].error;
    });
}
