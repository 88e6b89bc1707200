/** `m5dev cp SRC DEST`: files and trees between the host and the guest (one side guest:PATH). */
import type { Command } from 'commander';
import { printJson } from '../ui.js';
import { globalOpts } from '../options.js';

export function registerCp(program: Command): void {
  program
    .command('cp')
    .description('copy files or trees between the host and a guest, like docker cp: `m5dev cp ./src default:/home/ubuntu/src`, `m5dev cp guest:/var/log/syslog .` (guest: is --name\'s instance)')
    .option('--name <name>', 'instance of a guest:PATH side', 'default')
    .argument('<src>', 'a host path, NAME:PATH or guest:PATH (a host path with a colon: ./a:b)')
    .argument('<dest>', 'a host path, NAME:PATH or guest:PATH')
    .action(async (src: string, dest: string, opts: { name: string }, cmd: Command) => {
      const [{ copy, copyPlan }, { liveInstance }, { instanceDir, layout }, { existsSync }] = await Promise.all([
        import('../../workflows/copy.js'),
        import('../../workflows/running.js'),
        import('../../paths.js'),
        import('node:fs'),
      ]);
      const home = layout();
      const plan = copyPlan(src, dest, (name) => existsSync(instanceDir(home, name)));
      const { target } = await copy((await liveInstance(plan.instance ?? opts.name)).ssh, plan);
      if (globalOpts(cmd).json) printJson({ src, dest, target });
      else process.stdout.write(`${target}\n`);
    });
}
