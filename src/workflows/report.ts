/**
 * How a workflow tells what it is doing, without knowing how it is shown: each phase runs its steps
 * through a Reporter (cli/reporter.ts draws them with listr; tests and nested uses may stay silent).
 * A step has a title while it runs, may say what it does now, and ends done (with a final title),
 * skipped (with the reason), or failed (its error propagates).
 */
export interface Step {
  /** One line of what the step is doing now (a download's progress, a build's last line). */
  output(line: string): void;
  /** The step's title from now on (what it found or made). */
  title(text: string): void;
  /** The step ends skipped, with this reason (it had nothing to do). */
  skip(reason: string): void;
}

export interface Reporter {
  /** Run one step and return what it made. */
  step<T>(title: string, run: (s: Step) => Promise<T>): Promise<T>;
  /** A step with nothing to do, shown with why. */
  skipped(title: string, reason: string): Promise<void>;
}

/** A step whose result is skipped when `reason` is a string: one call for "skip, or run". */
export async function stepUnless<T>(report: Reporter, title: string, reason: string | false, run: (s: Step) => Promise<T>): Promise<T | undefined> {
  if (reason !== false) {
    await report.skipped(title, reason);
    return undefined;
  }
  return report.step(title, run);
}

/** Shows nothing (a phase run inside another command's step, a test). */
export const silentReporter: Reporter = {
  step: (_title, run) => run({ output: () => undefined, title: () => undefined, skip: () => undefined }),
  skipped: async () => undefined,
};

