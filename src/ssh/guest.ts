/** The SSH client for an instance: direct to 127.0.0.1 when the engine's loopback is ours, else through the Engine API relay. */
import type { VmExec } from '../vmhost/vm-host.js';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../assets.js';
import { layout } from '../paths.js';
import type { InstanceFiles, InstanceState } from '../vm/instance.js';
import { GuestSsh, chooseSshMode } from './client.js';
import { proxyCommandLine } from './proxy.js';

export const CLI_PATH = join(PACKAGE_ROOT, 'dist', 'cli', 'main.js');

/** The ProxyCommand an instance needs, if any (an engine that does not share this machine). */
export function proxyFor(state: InstanceState): string | undefined {
  return state.engine?.files === 'volumes' ? proxyCommandLine(process.execPath, CLI_PATH, layout().root, state.name) : undefined;
}

export function guestSsh(files: InstanceFiles, state: InstanceState, port: number, vm?: VmExec): GuestSsh {
  return new GuestSsh(files, state.name, port, chooseSshMode(), vm, proxyFor(state));
}
