/** `m5dev down` (stop, keep the disk) and `m5dev destroy` (stop and delete the instance). */
import type { Command } from 'commander';
import { rmSync } from 'node:fs';
import { connectDocker } from '../../docker/client.js';
import { layout } from '../../paths.js';
import { openInstance } from '../../vm/instance.js';
import { isSuspended } from '../../vm/saved-state.js';
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
      const { stopInstance } = await import('../../workflows/down.js');
      const res = await stopInstance(await connectDocker(), home, files, opts.name, Number(opts.grace));
      const suspended = isSuspended(files);
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
      const home = layout();
      const files = openInstance(home, opts.name);
      const { stopInstance } = await import('../../workflows/down.js');
      const res = await stopInstance(await connectDocker(), home, files, opts.name, 0);
      rmSync(files.dir, { recursive: true, force: true });
      if (globalOpts(cmd).json) printJson({ ...res, destroyed: true });
      else process.stdout.write(`${opts.name} destroyed\n`);
    });
}
