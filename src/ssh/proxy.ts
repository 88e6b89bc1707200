/**
 * SSH to a guest on an engine whose 127.0.0.1 is not the client's (remote, dind, a VM): ssh's
 * ProxyCommand runs `m5dev ssh-proxy`, which relays its stdio over a docker exec stream into the
 * VM container, to the port QEMU forwards to guest 22. The host key is still pinned by ssh.
 */
import type { VmExec } from '../vmhost/vm-host.js';
import { relayCommand } from '../scripts.js';
import { shellQuote } from '../shell.js';

/** The ProxyCommand line for an instance (pure): node, the CLI, its home and the instance name. */
export function proxyCommandLine(node: string, cli: string, home: string, name: string): string {
  return [node, cli, 'ssh-proxy', '--home', home, '--name', name].map(shellQuote).join(' ');
}

/** Pipe this process's stdin/stdout to the guest's sshd through the VM container; resolves at EOF. */
export async function relayToGuest(vm: VmExec, port: number): Promise<number> {
  const channel = await vm.channel(relayCommand({ tcp: '127.0.0.1', port }));
  channel.output.pipe(process.stdout, { end: false });
  process.stdin.pipe(channel.input);
  // A connection that breaks ends the relay like a close: ssh reports what it lost, not we.
  const { exitCode, stderr } = await channel.done.catch((e: unknown) => ({ exitCode: 255, stderr: `m5dev ssh-proxy: ${(e as Error).message}\n` }));
  process.stdin.unpipe(channel.input);
  if (stderr) process.stderr.write(stderr);
  // ssh's last bytes (exit status, channel close) must reach it before the process exits.
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  return exitCode;
}
