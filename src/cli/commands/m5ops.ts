/** `m5dev m5ops …`: what the guest's m5ops did (log, wait), its readfile, and the files it wrote (out). */
import type { Command } from 'commander';
import { mkdirSync } from 'node:fs';
import { globalOpts } from '../options.js';
import { printJson } from '../ui.js';
import { instanceReader, openOnEngine } from '../../workflows/running.js';
import { parseIntOption } from '../../config.js';
import { describeEvent, exitStatus } from '../../m5ops/ops.js';
import { printable } from '../../terminal-text.js';
import { UsageError } from '../../errors.js';
import { annotateError } from '../annotations.js';
import { M5OPS_STORED, cursorStore, putReadfile, readEvents, waitForExit } from '../../workflows/m5ops.js';

async function instance(name: string) {
  const opened = await openOnEngine(name);
  const { running, via } = instanceReader(opened, name);
  return { ...opened, running, events: async () => readEvents(opened.storage, await via()) };
}

export function registerM5ops(program: Command): void {
  const m5ops = program
    .command('m5ops')
    .description("the guest's gem5 m5ops, answered by the VM's QEMU at the m5ops base (docs/m5ops.md)")
    .addHelpText('after', '\nExample:\n  m5dev up --m5ops-readfile job.sh && m5dev exec -- \'m5 --addr 0x10010000 readfile | sh\' && m5dev m5ops wait --timeout 600');

  m5ops
    .command('log')
    .description('the ops the guest ran (exit, fail, stats, checkpoints, work items, files; not sum), with host time')
    .option('--name <name>', 'instance name', 'default')
    .option('-f, --follow', 'keep printing new ops until the VM stops (or Ctrl-C)')
    .action(async (opts: { name: string; follow?: boolean }, cmd: Command) => {
      const g = globalOpts(cmd);
      const inst = await instance(opts.name);
      let events = await inst.events();
      if (g.json && !opts.follow) {
        printJson(events);
        return;
      }
      const show = (list: typeof events) => {
        for (const e of list) process.stdout.write(g.json ? `${JSON.stringify(e)}\n` : `${describeEvent(e)}\n`);
      };
      show(events);
      if (!opts.follow) return;
      for (;;) {
        await new Promise((r) => setTimeout(r, 500));
        const alive = (await inst.running()) !== undefined;
        const now = await inst.events();
        if (now.length < events.length) events = [];
        show(now.slice(events.length));
        events = now;
        if (!alive) return;
      }
    });

  m5ops
    .command('wait')
    .description("block until the guest's next m5 exit or fail that no earlier wait returned (since the VM's launch: one that came before the wait counts), then exit with its code (exit: 0)")
    .option('--name <name>', 'instance name', 'default')
    .option('--timeout <seconds>', 'give up after this long (exit 19; the guest runs on)', '3600')
    .option('--new', 'only an exit or fail that comes after this call')
    .action(async (opts: { name: string; timeout: string; new?: boolean }, cmd: Command) => {
      const g = globalOpts(cmd);
      const timeout = parseIntOption(opts.timeout, '--timeout', 1, 7 * 86400);
      const inst = await instance(opts.name);
      const source = { read: inst.events, alive: async () => (await inst.running()) !== undefined, ...cursorStore(inst.storage) };
      const e = await waitForExit(source, timeout * 1000, {
        future: opts.new,
        onWaiting: () => {
          if (!g.quiet) process.stderr.write(`m5dev: waiting for ${opts.name}'s next m5 exit or fail (up to ${timeout} s)\n`);
        },
      });
      if (g.json) printJson(e);
      else if (!g.quiet) process.stderr.write(`m5dev: ${describeEvent(e)}\n`);
      process.exitCode = exitStatus(e.code ?? 0);
      if (process.exitCode !== 0) annotateError(`guest m5 ${e.op} (exit ${process.exitCode})`, describeEvent(e), { json: g.json });
    });

  m5ops
    .command('readfile <file>')
    .description("make FILE what the guest's `m5 readfile` reads (copied in; takes effect at the guest's next call)")
    .option('--name <name>', 'instance name', 'default')
    .action(async (file: string, opts: { name: string }, cmd: Command) => {
      const g = globalOpts(cmd);
      const inst = await instance(opts.name);
      await putReadfile(inst.storage, file);
      if (!g.quiet) process.stderr.write(`m5dev: ${opts.name}'s readfile is now a copy of ${file}\n`);
    });

  m5ops
    .command('out [dest]')
    .description("list the files the guest wrote with `m5 writefile` (m5out/ in the instance); with DEST, copy them there (holes stay holes); --clear empties m5out and so gives the instance its whole quota again")
    .option('--name <name>', 'instance name', 'default')
    .option('--clear', 'remove what the guest wrote (after copying it to DEST, if given); the VM must not be running')
    .action(async (dest: string | undefined, opts: { name: string; clear?: boolean }, cmd: Command) => {
      const g = globalOpts(cmd);
      const inst = await instance(opts.name);
      // The running plugin counts m5out's quota from what it held at launch: clear only between launches.
      if (opts.clear && (await inst.running()) !== undefined) {
        throw new UsageError(`${opts.name} is running: m5out's quota is counted by its QEMU`, `Copy what you need (\`m5dev m5ops out DEST\`), then \`m5dev down --name ${opts.name}\` (or suspend) and clear it.`);
      }
      const files = await inst.storage.listTree(M5OPS_STORED.out);
      if (dest) {
        mkdirSync(dest, { recursive: true });
        await inst.storage.exportTree(M5OPS_STORED.out, dest);
      }
      if (opts.clear) await inst.storage.removeTree(M5OPS_STORED.out);
      if (g.json) printJson({ dir: M5OPS_STORED.out, files, copiedTo: dest ?? null, cleared: opts.clear === true });
      else for (const f of files) process.stdout.write(`${String(f.size).padStart(12)}  ${printable(f.path)}\n`);
    });
}
