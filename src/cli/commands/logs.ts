/** `m5dev logs [-f]`: the guest's serial console. */
import type { Command } from 'commander';
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { layout } from '../../paths.js';
import { openInstance } from '../../vm/instance.js';
import { connectDocker } from '../../docker/client.js';
import { listVmContainers } from '../../docker/containers.js';

export function registerLogs(program: Command): void {
  program
    .command('logs')
    .description('print the guest serial console; -f follows it while the VM runs')
    .option('--name <name>', 'instance name', 'default')
    .option('-f, --follow', 'keep printing new output until the VM stops (or Ctrl-C)')
    .action(async (opts: { name: string; follow?: boolean }) => {
      const home = layout();
      const files = openInstance(home, opts.name);
      let offset = dump(files.console, 0);
      if (!opts.follow) return;
      const docker = await connectDocker();
      for (;;) {
        await new Promise((r) => setTimeout(r, 500));
        offset = dump(files.console, offset);
        const live = (await listVmContainers(docker, home.root, opts.name)).some((c) => c.state === 'running');
        if (!live) {
          dump(files.console, offset);
          return;
        }
      }
    });
}

function dump(path: string, from: number): number {
  if (!existsSync(path)) return from;
  const size = statSync(path).size;
  if (size < from) from = 0; // console restarted
  if (size === from) return from;
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(size - from);
    readSync(fd, buf, 0, buf.length, from);
    process.stdout.write(buf);
  } finally {
    closeSync(fd);
  }
  return size;
}
