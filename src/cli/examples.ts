/**
 * One example per command, shown under its `--help` and kept in the README's "Using it" block
 * (test/unit/examples.test.ts holds the two together and checks that every command has one).
 */
import type { Command } from 'commander';

export const EXAMPLES: Readonly<Record<string, string>> = {
  'image build': 'm5dev image build --strict-lock   # exactly the locked versions, or exit 4 naming each one gone',
  'image lock': 'm5dev image lock               # re-resolve docker/m5dev-tools/toolchain.lock and print the changes',
  'image save': 'm5dev image save tc.tar        # prints the archive\'s sha256',
  'image load': 'm5dev image load tc.tar --sha256 HEX   # on another machine: verified before it is loaded',
  'image push': 'm5dev image push registry.example/m5dev/toolchain:team   # prints REF@sha256:…',
  'image pull': 'm5dev image pull registry.example/m5dev/toolchain@sha256:HEX   # by digest, tagged as the toolchain',
  up: 'm5dev up                       # download, verify, prepare disk/keys/seed/flash, boot, wait for SSH',
  ssh: 'm5dev ssh                      # interactive shell (uses the container\'s ssh if the host has none)',
  exec: 'm5dev exec -- uname -r         # one command; exit code and output are the guest\'s',
  'ssh-config': 'm5dev ssh-config >> ~/.ssh/config   # Host m5dev-default for ssh / VS Code Remote-SSH',
  cp: 'm5dev cp ./mymod guest:/home/ubuntu      # copy files or trees in (or out: m5dev cp guest:/var/log/syslog .), any engine',
  status: 'm5dev status --json            # the engine; instances, ports, running or not',
  logs: 'm5dev logs -f                  # serial console',
  suspend: 'm5dev suspend                  # save the guest (devices + sparse RAM) to the instance dir and stop; `m5dev up` resumes in ~4 s',
  down: 'm5dev down                     # clean poweroff, container removed, disk kept',
  destroy: 'm5dev destroy                  # also delete the instance\'s disk, keys and seed',
  doctor: 'm5dev doctor                   # can this machine and engine run m5dev (exit 14 if not, with what to do)',
  'm5ops log': 'm5dev m5ops log -f             # every op with host time',
  'm5ops wait': 'm5dev m5ops wait               # blocks until the guest\'s m5 exit/fail; exits with its code',
  'm5ops readfile': 'm5dev m5ops readfile job2.sh   # a new readfile for the running guest',
  'm5ops out': 'm5dev m5ops out ./m5out        # copies what `m5 writefile` wrote (m5out/)',
  run: 'm5dev run --disk gem5-arm64.img --exits 2 --m5ops-readfile job.sh --out out/  # boots the image, its console on stdout; exits with the guest\'s code',
  init: 'm5dev init                       # a starter ./m5dev.json with "$schema": your editor checks and completes it',
  checkpoints: 'm5dev checkpoints --name run      # what `m5 checkpoint` saved; resume one: m5dev run --from-checkpoint run:1 --name again',
  'kernel build': 'm5dev kernel build             # linux-6.6.33 from kernel.org (pinned sha256), cross-compiled in the container',
  'module build': 'm5dev module build --src ~/mydriver   # cross-compile a Kbuild tree against the built kernel; nothing loaded',
  'module load': 'm5dev module load --src ~/mydriver --param debug=1   # any Kbuild tree (obj-m): build, insmod, list the device nodes and sysfs parameters it added',
  'module test': 'm5dev module test              # build module/ against that tree, copy, insmod, run module/test as \'ubuntu\', rmmod',
  'm5 install': 'm5dev m5 install --gem5 ~/gem5   # gem5\'s util/m5 built for this guest\'s m5ops base; then `m5dev exec -- m5 exit`',
  completion: 'source <(m5dev completion bash)  # or: m5dev completion zsh > "${fpath[1]}/_m5dev"; m5dev completion fish > ~/.config/fish/completions/m5dev.fish',
};

/** Every visible leaf command of `program` by its path ("image build"), the way --help lists them. */
export function leafCommands(program: Command): [string, Command][] {
  const help = program.createHelp();
  const walk = (c: Command, path: string[]): [string, Command][] => {
    const subs = help.visibleCommands(c).filter((s) => s.name() !== 'help');
    return subs.length ? subs.flatMap((s) => walk(s, [...path, s.name()])) : [[path.join(' '), c]];
  };
  return walk(program, []);
}

/** Each leaf command's --help ends with its example. */
export function addExamples(program: Command): void {
  for (const [path, cmd] of leafCommands(program)) {
    const example = EXAMPLES[path];
    if (example) cmd.addHelpText('after', `\nExample:\n  ${example}`);
  }
}
