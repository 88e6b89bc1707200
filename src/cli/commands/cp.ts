/** `m5dev cp SRC DEST`: files and trees between the host and the guest (one side guest:PATH). */
import type { Command } from 'commander';
import { printJson } from '../ui.js';
import { globalOpts } from '../options.js';

export function registerCp(program: Command): void {
  program
    .command('cp')
    .description('copy files or trees between the host and the guest, like docker cp: `m5dev cp ./src guest:/home/ubuntu/src`, `m5dev cp guest:/var/log/syslog .`')
    .option('--name <name>', 'instance name', 'default')
    .argument('<src>', 'a host path, or guest:PATH')
    .argument('<dest>', 'a host path, or guest:PATH')
    .action(async (src: string, dest: string, opts: { name: string }, cmd: Command) => {
      const [{ copy, copyPlan }, { liveInstance }] = await Promise.all([import('../../workflows/copy.js'), import('../../workflows/running.js')]);
      const plan = copyPlan(src, dest);
      const { target } = await copy((await liveInstance(opts.name)).ssh, plan);
      if (globalOpts(cmd).json) printJson({ src, dest, target });
      else process.stdout.write(`${target}\n`);
    });
}
