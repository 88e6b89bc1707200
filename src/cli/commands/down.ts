/** `m5dev down` (stop, keep the disk) and `m5dev destroy` (stop and delete the instance). */
import type { Command } from 'commander';
import { rmSync } from 'node:fs';
import { openOnEngine } from '../../workflows/running.js';
import type { DownResult } from '../../workflows/down.js';
import { layout } from '../../paths.js';
import { openInstance, readState } from '../../vm/instance.js';
import { LABELS } from '../../docker/labels.js';
import { removeInstanceNetworks } from '../../docker/networks.js';
import type { Engine } from '../../engine/engine.js';
import { isSuspended } from '../../vm/saved-state.js';
import { printJson } from '../ui.js';
import { globalOpts, instanceLock } from '../options.js';

export function registerDown(program: Command): void {
  program
    .command('down')
    .description('power the guest off and remove its container; the disk is kept')
    .option('--name <name>', 'instance name', 'default')
    .option('--grace <seconds>', 'seconds to wait for a clean poweroff (0: kill at once)', '60')
    .action(async (opts: { name: string; grace: string }, cmd: Command) => {
      const { res, suspended } = await instanceLock(cmd, opts.name, async () => {
        const inst = await openOnEngine(opts.name);
        const { stopInstance } = await import('../../workflows/down.js');
        return { res: await stopInstance(inst, Number(opts.grace)), suspended: await isSuspended(inst.storage) };
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
      const res = await instanceLock(cmd, opts.name, async (): Promise<DownResult> => {
        let stopped: DownResult = { name: opts.name, wasRunning: false, clean: false };
        if (readState(files)) {
          const inst = await openOnEngine(opts.name);
          const { stopInstance } = await import('../../workflows/down.js');
          stopped = await stopInstance(inst, 0);
          await removeInstanceNetworks(inst.engine.docker, inst.home.root, opts.name);
          // The engine's data first (a volume on a remote engine), then the client's record of it.
          await inst.storage.destroy();
        } else {
          // An `up` cut short before it recorded anything: whatever it left on the engine goes too.
          const { connectEngine } = await import('../../engine/engine.js');
          const engine = await connectEngine();
          await removeInstanceNetworks(engine.docker, layout().root, opts.name);
          await removeInstanceVolumes(engine, layout().root, opts.name);
        }
        rmSync(files.dir, { recursive: true, force: true });
        return stopped;
      });
      if (globalOpts(cmd).json) printJson({ ...res, destroyed: true });
      else process.stdout.write(`${opts.name} destroyed\n`);
    });
}

/** Volumes of this home's instance left on the engine (labelled when they were made). */
async function removeInstanceVolumes(engine: Engine, home: string, name: string): Promise<void> {
  const { Volumes } = await engine.docker.listVolumes({ filters: { label: [`${LABELS.home}=${home}`, `${LABELS.instance}=${name}`] } });
  for (const v of Volumes ?? []) await engine.docker.getVolume(v.Name).remove({ force: true });
}
