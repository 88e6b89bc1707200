/** `m5dev status [--json]`: the engine, and every instance (or one), its container state and SSH port. */
import type { Command } from 'commander';
import { existsSync, readdirSync } from 'node:fs';
import { connectEngine, type EngineInfo } from '../../engine/engine.js';
import { existingInstanceStorage, recordedFilesMode } from '../../engine/instance-storage.js';
import { dockerVmHost } from '../../vmhost/docker-vm-host.js';
import { layout } from '../../paths.js';
import { instanceFiles, readState } from '../../vm/instance.js';
import { join } from 'node:path';
import { printJson } from '../ui.js';
import { globalOpts } from '../options.js';
import { InstanceNotFoundError } from '../../errors.js';
import { isSuspended } from '../../vm/saved-state.js';
import { hex, M5OPS_SIZE } from '../../config.js';
import { lastExit } from '../../m5ops/ops.js';
import { agentPid } from '../../workflows/checkpoint-agent.js';
import { readEvents } from '../../workflows/m5ops.js';

export interface InstanceStatus {
  name: string;
  state: 'running' | 'suspended' | 'stopped' | 'exited';
  sshPort: number | null;
  accel: string | null;
  cpu: string | null;
  kernel: string | null;
  disk: string | null;
  container: string | null;
  /** Where its files live: `shared` with this machine, or `volumes` on the engine. */
  files: string | null;
  /** The m5ops device it runs with; with --name, also the guest's last m5 exit/fail. */
  m5ops: { addr: string; size: string; exit: string; lastExit?: { time: string; op: string; code: number } | null; checkpointAgent?: number | null } | null;
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('show the Docker engine, the instances and whether their VM is running')
    .option('--name <name>', 'only this instance')
    .action(async (opts: { name?: string }, cmd: Command) => {
      const g = globalOpts(cmd);
      const home = layout();
      const engine = await connectEngine();
      const info = await engine.info();
      const host = dockerVmHost(engine, home.root);
      const containers = await host.list();
      const names = existsSync(home.instances) ? readdirSync(home.instances).sort() : [];
      if (opts.name && !names.includes(opts.name)) throw new InstanceNotFoundError(opts.name);
      const rows: InstanceStatus[] = [];
      for (const name of opts.name ? [opts.name] : names) {
        const files = instanceFiles(join(home.instances, name));
        const state = readState(files);
        const c = containers.find((x) => x.instance === name);
        const onThisEngine = state !== undefined && (state.engine?.host ?? engine.endpoint.host) === engine.endpoint.host;
        const suspended = !c && onThisEngine && (await isSuspended(existingInstanceStorage(engine, home, files, state)));
        rows.push({
          name,
          state: c ? (c.running ? 'running' : 'exited') : suspended ? 'suspended' : 'stopped',
          sshPort: c?.sshPort ?? state?.sshPort ?? null,
          accel: state?.accel ?? null,
          cpu: state?.cpu ?? null,
          kernel: state?.kernel ?? null,
          disk: state?.disk ?? null,
          container: c ? c.id.slice(0, 12) : null,
          files: state ? recordedFilesMode(state) : null,
          m5ops: state?.m5ops
            ? { addr: hex(state.m5ops.addr), size: hex(M5OPS_SIZE), exit: state.m5ops.exit, ...(state.m5ops.checkpoints ? { checkpointAgent: agentPid(files) ?? null } : {}) }
            : null,
        });
        const row = rows.at(-1);
        if (opts.name && row?.m5ops && onThisEngine) {
          const last = lastExit(await readEvents(existingInstanceStorage(engine, home, files, state), c?.running ? { vm: host.attach(c), mountedAt: '/instance' } : undefined));
          row.m5ops.lastExit = last ? { time: new Date(last.time).toISOString(), op: last.op, code: last.code ?? 0 } : null;
        }
      }
      if (g.json) {
        // One instance: its row, with the engine beside it; all: the engine and the list.
        printJson(opts.name ? { ...rows[0], engine: info } : { engine: info, instances: rows });
        return;
      }
      process.stdout.write(engineLine(info));
      if (rows.length === 0) {
        process.stdout.write('no instances (start one with `m5dev up`)\n');
        return;
      }
      for (const r of rows) {
        process.stdout.write(`${r.name.padEnd(16)} ${r.state.padEnd(9)} 127.0.0.1:${r.sshPort ?? '-'}  ${r.accel ?? '-'} ${r.cpu ?? ''}${r.kernel ? `  kernel ${r.kernel}` : ''}${r.m5ops ? `  m5ops ${r.m5ops.addr}` : ''}${r.m5ops?.lastExit ? ` (last ${r.m5ops.lastExit.op} ${r.m5ops.lastExit.code})` : ''}${r.m5ops?.checkpointAgent === undefined ? '' : r.m5ops.checkpointAgent === null ? '  checkpoints: no agent (m5dev up starts it)' : '  checkpoints: agent running'}\n`);
      }
    });
}

function engineLine(e: EngineInfo): string {
  return `engine: ${e.product} ${e.version} ${e.os}/${e.arch}${e.rootless ? ' rootless' : ''} at ${e.host} (${e.source})\n`;
}
