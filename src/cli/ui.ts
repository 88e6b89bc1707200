/** How progress is shown: renderer chosen once; progress always on stderr, results on stdout. */
import type { ListrTask } from 'listr2';
import type { Reporter } from '../workflows/report.js';
import { session } from '../session.js';

export interface UiOptions {
  quiet?: boolean;
  json?: boolean;
}

export type RendererName = 'default' | 'simple' | 'silent';

export function chooseRenderer(opts: UiOptions, env: Readonly<NodeJS.ProcessEnv> = session().env, isTTY = Boolean(process.stderr.isTTY)): RendererName {
  if (opts.quiet) return 'silent';
  if (!isTTY || env.CI === 'true' || env.CI === '1' || env.TERM === 'dumb') return 'simple';
  return 'default';
}

/** listr's options for `renderer`, on stderr; M5DEV_TIMINGS=1: every finished step says how long it took. */
async function listrOptions(renderer: RendererName): Promise<object> {
  const { ListrLogger, ProcessOutput } = await import('listr2'); // loaded on first use
  const processOutput = new ProcessOutput(process.stderr, process.stderr);
  const logger = new ListrLogger({ useIcons: true, processOutput });
  const timing = session().timings ? { timer: { field: (ms: number) => `${Math.round(ms)} ms`, format: () => (text: string) => text } } : {};
  return {
    renderer,
    fallbackRenderer: 'simple',
    exitOnError: true,
    registerSignalListeners: false,
    collectErrors: false,
    rendererOptions: renderer === 'simple' ? { logger, ...timing } : { collapseSkips: false, showSkipMessage: true, collapseSubtasks: false, logger, ...timing },
    fallbackRendererOptions: { logger, ...timing },
    processOutput,
  };
}

/**
 * The workflows' Reporter drawn by listr: each step one task as it comes. `prefix` names the
 * instance when several run at once (they are then drawn as plain lines: one live display each
 * would overwrite the others').
 */
export function listrReporter(opts: UiOptions & { prefix?: string }): Reporter {
  const renderer = opts.prefix && chooseRenderer(opts) === 'default' ? 'simple' : chooseRenderer(opts);
  const named = (title: string) => (opts.prefix ? `${opts.prefix}: ${title}` : title);
  const run = async (task: ListrTask<object>) => {
    const { Listr } = await import('listr2');
    await new Listr<object, RendererName, 'simple'>([task], { ctx: {}, ...(await listrOptions(renderer)) }).run();
  };
  return {
    step: async <T>(title: string, body: (s: import('../workflows/report.js').Step) => Promise<T>): Promise<T> => {
      let result: { value: T } | undefined;
      await run({
        title: named(title),
        task: async (_ctx, task) => {
          let skipped: string | undefined;
          const value = await body({ output: (line) => (task.output = line), title: (text) => (task.title = named(text)), skip: (reason) => (skipped = reason) });
          result = { value };
          if (skipped !== undefined) task.skip(skipped);
        },
      });
      if (!result) throw new Error(`step "${title}" ended without a result`);
      return result.value;
    },
    skipped: (title, reason) => run({ title: named(title), skip: () => reason, task: () => undefined }),
  };
}

/** One JSON result on stdout (the contract for --json). */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
