/** `m5dev down` (stop, keep the disk) and `m5dev destroy` (stop and delete the instance). */
import type { Command } from 'commander';
import { rmSync } from 'node:fs';
import { connectDocker } from '../../docker/client.js';
import { layout } from '../../paths.js';
import { openInstance } from '../../vm/instance.js';
import { stopInstance } from '../../workflows/down.js';
import { printJson } from '../ui.js';
import { globalOpts } from '../options.js';

export function registerDown(program: Command): void {
  program
    .command('down')
    .description('power the guest off and remove its container; the disk is kept')
    .option('--name <name>', 'instance name', 'default')
    .option('--grace <seconds>', 'seconds to wait for a clean poweroff (0: kill at once)', '60')
    .action(async (opts: { name: string; grace: string }, cmd: Command) => {
      const home = layout();
      const files = openInstance(home, opts.name);
      const res = await stopInstance(await connectDocker(), home, files, opts.name, Number(opts.grace));
      if (globalOpts(cmd).json) printJson(res);
      else process.stdout.write(res.wasRunning ? `${opts.name} stopped${res.clean ? '' : ' (forced)'}\n` : `${opts.name} was not running\n`);
    });

  program
    .command('destroy')
    .description('stop the instance and delete its disk, keys and seed (the cached base image stays)')
    .option('--name <name>', 'instance name', 'default')
    .action(async (opts: { name: string }, cmd: Command) => {
      const home = layout();
      const files = openInstance(home, opts.name);
      const res = await stopInstance(await connectDocker(), home, files, opts.name, 0);
      rmSync(files.dir, { recursive: true, force: true });
      if (globalOpts(cmd).json) printJson({ ...res, destroyed: true });
      else process.stdout.write(`${opts.name} destroyed\n`);
    });
}
