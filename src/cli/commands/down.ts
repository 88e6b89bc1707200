/** `m5dev down` (stop, keep the disk) and `m5dev destroy` (stop and delete the instance). */
import type { Command } from 'commander';
import { rmSync } from 'node:fs';
import { openOnEngine } from '../../workflows/running.js';
import type { DownResult } from '../../workflows/down.js';
import { layout } from '../../paths.js';
import { openInstance, readState } from '../../vm/instance.js';
import { removeInstanceVolumes } from '../../engine/instance-storage.js';
import { dockerVmHost } from '../../vmhost/docker-vm-host.js';
import { isSuspended } from '../../vm/saved-state.js';
import { printJson } from '../ui.js';
import { globalOpts, stoppingLock } from '../options.js';

export function registerDown(program: Command): void {
  program
    .command('down')
    .description('power the guest off and remove its container; the disk is kept')
    .option('--name <name>', 'instance name', 'default')
    .option('--grace <seconds>', 'seconds to wait for a clean poweroff (0: kill at once)', '60')
    .action(async (opts: { name: string; grace: string }, cmd: Command) => {
      const { res, suspended } = await stoppingLock(cmd, opts.name, async () => {
        const inst = await openOnEngine(opts.name);
        const { stopInstance } = await import('../../workflows/down.js');
        const res = await stopInstance(inst, Number(opts.grace));
        const suspended = await isSuspended(inst.storage);
        // Its network goes with it, unless a saved state waits to be resumed on it.
        if (!suspended) await inst.host.forget(opts.name);
        return { res, suspended };
      });
      if (globalOpts(cmd).json) printJson(res);
      else if (res.wasRunning) process.stdout.write(`${opts.name} stopped${res.clean ? '' : ' (forced)'}\n`);
      else if (suspended) process.stdout.write(`${opts.name} is suspended; its saved state is kept (\`m5dev up\` resumes it, \`m5dev up --no-resume\` discards it)\n`);
      else process.stdout.write(`${opts.name} was not running\n`);
    });

  program
    .command('destroy')
    .description('stop the instance and delete its disk, keys and seed (the cached base image stays)')
    .option('--name <name>', 'instance name', 'default')
    .action(async (opts: { name: string }, cmd: Command) => {
      const files = openInstance(layout(), opts.name);
      const res = await stoppingLock(cmd, opts.name, async (): Promise<DownResult> => {
        let stopped: DownResult = { name: opts.name, wasRunning: false, clean: false };
        if (readState(files)) {
          const inst = await openOnEngine(opts.name);
          const { stopInstance } = await import('../../workflows/down.js');
          stopped = await stopInstance(inst, 0);
          await inst.host.forget(opts.name);
          // The engine's data first (a volume on a remote engine), then the client's record of it.
          await inst.storage.destroy();
        } else {
          // An `up` cut short before it recorded anything: whatever it left on the engine goes too.
          const { connectEngine } = await import('../../engine/engine.js');
          const engine = await connectEngine();
          await dockerVmHost(engine, layout().root).forget(opts.name);
          await removeInstanceVolumes(engine, layout().root, opts.name);
        }
        rmSync(files.dir, { recursive: true, force: true });
        return stopped;
      });
      if (globalOpts(cmd).json) printJson({ ...res, destroyed: true });
      else process.stdout.write(`${opts.name} destroyed\n`);
    });
}
