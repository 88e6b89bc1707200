/** `m5dev up`: Prepare (cached artefacts) then Start (QEMU in its container) and wait for SSH. */
import { Command, Option } from 'commander';
import { DEFAULTS, loadConfigFile, parseConfig, parseMemory, resolveConfig, type VmConfig } from '../../config.js';
import { layout } from '../../paths.js';
import type { UpCtx } from '../../workflows/up.js';
import { printJson, runTasks } from '../ui.js';
import { globalOpts, instanceLock } from '../options.js';
import { validateName } from '../../vm/instance.js';

interface UpFlags {
  name: string;
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
  share?: string[];
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
      shares: f.share,
    },
    'command line',
  );
}

export function registerUp(program: Command): void {
  program
    .command('up')
    .description('boot the arm64 guest in its container and wait until SSH works')
    .option('--name <name>', 'instance name', 'default')
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
    .option('--share <HOST_DIR[:GUEST_PATH]>', 'mount a host directory in the guest, writable (repeatable; default guest path /home/ubuntu/<name>; replaces m5dev.json "shares"); needs an engine that sees this machine\'s files', (v: string, acc: string[] = []) => [...acc, v])
    .option('--no-resume', 'boot afresh, discarding the memory saved by `m5dev suspend` (the disk was synced when it suspended)')
    .action(async (flags: UpFlags, cmd: Command) => {
      const g = globalOpts(cmd);
      const name = validateName(flags.name);
      const fromFlags = flagsToConfig(flags);
      const config = resolveConfig(fromFlags, loadConfigFile());
      const home = layout();
      const explicit = new Set(Object.keys(fromFlags) as (keyof VmConfig)[]);
      const { newUpCtx, upTasks } = await import('../../workflows/up.js');
      const ctx = newUpCtx(name, config, explicit, home);
      ctx.kernelVersion = flags.kernel;
      ctx.noResume = !flags.resume;
      const done = await instanceLock(cmd, name, () => runTasks<UpCtx>(upTasks(), ctx, g));
      const result = {
        name,
        sshPort: done.sshPort,
        accel: done.state?.accel,
        cpu: done.state?.cpu,
        kernel: done.kernel?.release ?? null,
        shares: done.config.shares,
        bootSeconds: done.bootSeconds,
        alreadyRunning: Boolean(done.running),
        resumed: Boolean(done.resumed),
        notes: done.notes,
        container: done.containerId,
      };
      if (g.json) printJson(result);
      else process.stdout.write(`${name} is ${done.resumed ? 'resumed' : 'up'}: m5dev ssh${name === 'default' ? '' : ` --name ${name}`}  (127.0.0.1:${done.sshPort})\n`);
    });
}
