/** How progress is shown: renderer chosen once; progress always on stderr, results on stdout. */
import type { ListrTask } from 'listr2';

export interface UiOptions {
  quiet?: boolean;
  json?: boolean;
}

export type RendererName = 'default' | 'simple' | 'silent';

export function chooseRenderer(opts: UiOptions, env: NodeJS.ProcessEnv = process.env, isTTY = Boolean(process.stderr.isTTY)): RendererName {
  if (opts.quiet) return 'silent';
  if (!isTTY || env.CI === 'true' || env.CI === '1' || env.TERM === 'dumb') return 'simple';
  return 'default';
}

export async function runTasks<Ctx extends object>(tasks: ListrTask<Ctx>[], ctx: Ctx, opts: UiOptions): Promise<Ctx> {
  const renderer = chooseRenderer(opts);
  const { Listr, ListrLogger, ProcessOutput } = await import('listr2'); // loaded on first use
  const processOutput = new ProcessOutput(process.stderr, process.stderr);
  const logger = new ListrLogger({ useIcons: true, processOutput });
  // M5DEV_TIMINGS=1: every finished step says how long it took (where the time of a command goes).
  const timing = process.env.M5DEV_TIMINGS === '1' ? { timer: { field: (ms: number) => `${Math.round(ms)} ms`, format: () => (text: string) => text } } : {};
  const list = new Listr<Ctx, 'default' | 'simple' | 'silent', 'simple'>(tasks, {
    ctx,
    renderer,
    fallbackRenderer: 'simple',
    exitOnError: true,
    registerSignalListeners: false,
    collectErrors: false,
    rendererOptions: renderer === 'simple' ? { logger, ...timing } : { collapseSkips: false, showSkipMessage: true, collapseSubtasks: false, logger, ...timing },
    fallbackRendererOptions: { logger, ...timing },
    processOutput,
  } as never);
  return list.run();
}

/** One JSON result on stdout (the contract for --json). */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
