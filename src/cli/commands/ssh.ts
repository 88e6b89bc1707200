/** `m5dev ssh [-- cmd]`, `m5dev exec -- cmd` and `m5dev ssh-config`. */
import type { Command } from 'commander';
import { runInGuest } from '../../workflows/running.js';
import { UsageError } from '../../errors.js';
import { hostTarget } from '../../ssh/client.js';
import { sshConfigBlock } from '../../ssh/args.js';
import { layout } from '../../paths.js';
import { openInstance, requireState } from '../../vm/instance.js';
import { proxyFor } from '../../ssh/guest.js';
import { GUEST_SSH_FORWARD } from '../../vm/guest-access.js';
import { instanceSession } from '../instance-session.js';

export function registerSsh(program: Command): void {
  program
    .command('ssh')
    .description('open a shell in the guest (or run a command); uses the container\'s ssh when the host has none')
    .option('--name <name>', 'instance name', 'default')
    .argument('[cmd...]', 'command to run instead of a shell')
    .action(async (cmdArgs: string[], opts: { name: string }) => {
      process.exitCode = await runInGuest(opts.name, cmdArgs, 'ssh');
    });

  program
    .command('exec')
    .description('run a command in the guest; exits with the guest command\'s exit code. Two or more words are its argv, passed exactly (as docker exec); one word is a shell command line')
    .option('--name <name>', 'instance name', 'default')
    .argument('<cmd...>', 'command (after --)')
    .action(async (cmdArgs: string[], opts: { name: string }) => {
      if (cmdArgs.length === 0) throw new UsageError('exec needs a command: m5dev exec -- uname -r');
      process.exitCode = await runInGuest(opts.name, cmdArgs, 'exec');
    });

  program
    .command('ssh-config')
    .description('print a Host block for ~/.ssh/config or VS Code Remote-SSH')
    .option('--name <name>', 'instance name', 'default')
    .option('--host <alias>', 'Host alias to print (default m5dev-<name>)')
    .action((opts: { name: string; host?: string }) => {
      const files = openInstance(layout(), opts.name);
      const state = requireState(files, opts.name);
      process.stdout.write(sshConfigBlock(hostTarget(files, opts.name, state.sshPort, proxyFor(state)), opts.host ?? `m5dev-${opts.name}`));
    });

  program
    .command('ssh-proxy', { hidden: true })
    .description('ProxyCommand for ssh: relay stdio to the guest\'s sshd through the engine (engines whose 127.0.0.1 is not this machine\'s)')
    .option('--name <name>', 'instance name', 'default')
    .option('--home <dir>', 'the m5dev home the instance belongs to')
    .action(async (opts: { name: string; home?: string }) => {
      // The engine the instance lives on, even when ssh runs without our environment (VS Code).
      instanceSession(opts.name, opts.home);
      const { liveInstance } = await import('../../workflows/running.js');
      const { relayToGuest } = await import('../../ssh/proxy.js');
      const live = await liveInstance(opts.name);
      process.exitCode = await relayToGuest(live.vm, GUEST_SSH_FORWARD);
    });
}
