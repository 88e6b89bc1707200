/** `m5dev suspend`: save the running guest to disk and stop it; `m5dev up` resumes it where it was. */
import type { Command } from 'commander';
import { liveInstance } from '../../workflows/running.js';
import { printJson } from '../ui.js';
import { globalOpts, stoppingLock } from '../options.js';

export function registerSuspend(program: Command): void {
  program
    .command('suspend')
    .description('save the running guest (memory and devices) and stop it; `m5dev up` resumes it in seconds')
    .option('--name <name>', 'instance name', 'default')
    .action(async (opts: { name: string }, cmd: Command) => {
      const { suspendInstance } = await import('../../workflows/suspend.js');
      const res = await stoppingLock(cmd, opts.name, async () => suspendInstance(await liveInstance(opts.name)));
      if (globalOpts(cmd).json) printJson(res);
      else {
        if (!res.synced) process.stderr.write('m5dev: warning: the guest did not answer `sync` over SSH; its disk may lag its saved memory\n');
        process.stdout.write(`${res.name} suspended (${(res.bytes / 2 ** 20).toFixed(0)} MiB saved in ${res.seconds.toFixed(1)} s); \`m5dev up\` resumes it\n`);
      }
    });
}
