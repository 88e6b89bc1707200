/** `m5dev status [--json]`: every instance (or one), its container state and SSH port. */
import type { Command } from 'commander';
import { existsSync, readdirSync } from 'node:fs';
import { connectDocker } from '../../docker/client.js';
import { listVmContainers } from '../../docker/containers.js';
import { layout } from '../../paths.js';
import { instanceFiles, readState } from '../../vm/instance.js';
import { join } from 'node:path';
import { printJson } from '../ui.js';
import { globalOpts } from '../options.js';
import { InstanceNotFoundError } from '../../errors.js';
import { isSuspended } from '../../vm/saved-state.js';

export interface InstanceStatus {
  name: string;
  state: 'running' | 'suspended' | 'stopped' | 'exited';
  sshPort: number | null;
  accel: string | null;
  cpu: string | null;
  kernel: string | null;
  disk: string | null;
  container: string | null;
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('show instances and whether their VM is running')
    .option('--name <name>', 'only this instance')
    .action(async (opts: { name?: string }, cmd: Command) => {
      const g = globalOpts(cmd);
      const home = layout();
      const docker = await connectDocker();
      const containers = await listVmContainers(docker, home.root);
      const names = existsSync(home.instances) ? readdirSync(home.instances).sort() : [];
      if (opts.name && !names.includes(opts.name)) throw new InstanceNotFoundError(opts.name);
      const rows: InstanceStatus[] = (opts.name ? [opts.name] : names).map((name) => {
        const files = instanceFiles(join(home.instances, name));
        const state = readState(files);
        const c = containers.find((x) => x.instance === name);
        return {
          name,
          state: c ? (c.state === 'running' ? 'running' : 'exited') : isSuspended(files) ? 'suspended' : 'stopped',
          sshPort: c?.sshPort ?? state?.sshPort ?? null,
          accel: state?.accel ?? null,
          cpu: state?.cpu ?? null,
          kernel: state?.kernel ?? null,
          disk: state?.disk ?? null,
          container: c ? c.id.slice(0, 12) : null,
        };
      });
      if (g.json) {
        printJson(opts.name ? rows[0] : rows);
        return;
      }
      if (rows.length === 0) {
        process.stdout.write('no instances (start one with `m5dev up`)\n');
        return;
      }
      for (const r of rows) {
        process.stdout.write(`${r.name.padEnd(16)} ${r.state.padEnd(9)} 127.0.0.1:${r.sshPort ?? '-'}  ${r.accel ?? '-'} ${r.cpu ?? ''}${r.kernel ? `  kernel ${r.kernel}` : ''}\n`);
      }
    });
}
