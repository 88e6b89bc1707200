/** `m5dev logs [-f]`: the guest's serial console, from wherever the engine keeps it. */
import type { Command } from 'commander';
import { instanceReader, openOnEngine } from '../../workflows/running.js';
import { STORED } from '../../vm/instance.js';
import { terminalText } from '../../terminal-text.js';
import { guestBlock } from '../annotations.js';

/** Enough for any console; a volume is read whole through one helper or exec. */
const MAX = 64 * 2 ** 20;

export function registerLogs(program: Command): void {
  program
    .command('logs')
    .description('print the guest serial console; -f follows it while the VM runs')
    .option('--name <name>', 'instance name', 'default')
    .option('-f, --follow', 'keep printing new output until the VM stops (or Ctrl-C)')
    .action(async (opts: { name: string; follow?: boolean }) => {
      const opened = await openOnEngine(opts.name);
      const { running, via } = instanceReader(opened, opts.name);
      const read = async () => Buffer.from(await opened.storage.readTail(STORED.console, MAX, await via()), 'utf8');
      let seen = await read();
      // The guest writes the console: what reaches the terminal is its text, not its escape sequences.
      // Under GitHub Actions the console is text for the runner too (no workflow command from the guest).
      process.stdout.write(guestBlock(terminalText(seen.toString('utf8'))));
      if (!opts.follow) return;
      for (;;) {
        await new Promise((r) => setTimeout(r, 500));
        const alive = (await running()) !== undefined;
        const now = await read();
        if (now.length < seen.length) seen = Buffer.alloc(0); // console restarted
        if (now.length > seen.length) process.stdout.write(guestBlock(terminalText(now.subarray(seen.length).toString('utf8'))));
        seen = now;
        if (!alive) return;
      }
    });
}
