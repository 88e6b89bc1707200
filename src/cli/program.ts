/** The command tree, and the mapping of typed errors to messages, hints and exit codes. */
import { Command, CommanderError } from 'commander';
import { DiskFullError, M5devError, ExitCode, UsageError, engineLost, isDiskFull } from '../errors.js';
import { installSignalHandlers, interruptExitCode, isInterrupting, runCleanups } from '../cleanup.js';
import { MESSAGES } from '../messages.js';
import { terminalText } from '../terminal-text.js';
import { annotateError, guestBlock } from './annotations.js';
import { registerImage } from './commands/image.js';
import { registerVm } from './commands/vm.js';
import { registerKernel } from './commands/kernel.js';
import { registerModule } from './commands/module.js';
import { registerM5 } from './commands/m5.js';
import { addExamples } from './examples.js';
import { session, updateSession } from '../session.js';

export const VERSION = '0.1.0';

/** `--json` on the command line: stdout carries the result, so annotations go to stderr. */
const jsonRequested = (): boolean => process.argv.includes('--json');

export function buildProgram(): Command {
  const program = new Command('m5dev')
    .description('The same arm64 kernel-module development guest on any Docker host')
    // `-V/--version` is handled in run(): a program-level --version would swallow `kernel build --version`.
    .addHelpText('after', '\nm5dev -V, --version prints the version.')
    .option('--json', 'print the result as JSON on stdout')
    .option('-q, --quiet', 'no progress output')
    .option('--no-wait', 'fail at once (exit 15) when another m5dev is using the instance or cache entry, instead of waiting for it')
    .option('--toolchain <ref>', 'use this toolchain image as it is (loaded, or pulled by digest: REF@sha256:…) instead of building one; also M5DEV_TOOLCHAIN')
    .hook('preAction', (root) => {
      const given = root.opts<{ toolchain?: string }>().toolchain;
      if (given) updateSession({ M5DEV_TOOLCHAIN: given });
    })
    .showHelpAfterError()
    .exitOverride();
  registerImage(program);
  registerVm(program);
  registerKernel(program);
  registerModule(program);
  registerM5(program);
  program
    .command('completion')
    .description('print a shell completion script (commands, flags, instance names)')
    .argument('<shell>', 'bash, zsh or fish')
    .action(async (shell: string) => {
      if (shell !== 'bash' && shell !== 'zsh' && shell !== 'fish') throw new UsageError(`no completion for shell "${shell}"`, 'Use bash, zsh or fish.');
      const { completionScript } = await import('./completion.js');
      process.stdout.write(completionScript(shell, program));
    });
  addExamples(program);
  return program;
}

export function reportError(e: unknown): number {
  const code = describeError(e);
  // A signal's cleanup cancels the running step, whose error lands here: exit as the signal says.
  return interruptExitCode() ?? code;
}

function describeError(e: unknown): number {
  e = engineLost(e) ?? e;
  // A write here (a state file) or on the engine (an archive upload) that ran out of space.
  if (!(e instanceof M5devError) && isDiskFull(`${(e as NodeJS.ErrnoException)?.code ?? ''} ${(e as Error)?.message ?? ''}`)) {
    e = new DiskFullError('writing m5dev\'s files', undefined, (e as Error).message);
  }
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
    return ExitCode.usage; // commander already printed the message
  }
  if (e instanceof M5devError) {
    annotateError(`m5dev (exit ${e.exitCode})`, `${e.message}${e.hint ? `\n${e.hint}` : ''}`, { json: jsonRequested() });
    // Messages and details carry guest output (its stderr, names it chose): printed as text only.
    process.stderr.write(`m5dev: error: ${terminalText(e.message)}\n`);
    if (e.details) process.stderr.write(guestBlock(`${terminalText(e.details).replace(/^/gm, '  | ')}\n`));
    if (e.hint) process.stderr.write(`hint: ${terminalText(e.hint)}\n`);
    return e.exitCode;
  }
  const err = e as Error;
  annotateError(`m5dev (exit ${ExitCode.unexpected}, a bug)`, err?.message ?? String(e), { json: jsonRequested() });
  process.stderr.write(`m5dev: unexpected error: ${terminalText(err?.message ?? String(e))}\n`);
  if (session().debug) process.stderr.write(`${err?.stack ?? ''}\n`);
  else process.stderr.write('hint: this is a bug in m5dev; rerun with M5DEV_DEBUG=1 for a stack trace and report it.\n');
  return ExitCode.unexpected;
}

export async function run(argv: string[]): Promise<number> {
  installSignalHandlers(() => process.stderr.write(`\nm5dev: ${MESSAGES.interrupted}\n`));
  if (argv.length === 3 && (argv[2] === '-V' || argv[2] === '--version')) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  try {
    await buildProgram().parseAsync(argv);
    // A command stopped from outside its flow (a signal, a lost lock) that still ran to its end:
    // its cleanups finish first, and it exits as the stop said, never 0.
    if (isInterrupting()) {
      await runCleanups();
      return interruptExitCode() ?? ExitCode.interrupted;
    }
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (e) {
    await runCleanups();
    return reportError(e);
  }
}

