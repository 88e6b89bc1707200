#!/usr/bin/env node
/** m5dev entry point: `m5dev exec -- …` takes a short path (shortcut.ts); everything else the full CLI. */
import { execShortcut, runShortcut } from './shortcut.js';

async function main(argv: string[]): Promise<number> {
  const shortcut = execShortcut(argv.slice(2));
  if (!shortcut) return (await import('./program.js')).run(argv);
  try {
    return await runShortcut(shortcut);
  } catch (e) {
    await (await import('../cleanup.js')).runCleanups();
    return (await import('./program.js')).reportError(e);
  }
}

main(process.argv).then(
  (code) => process.exit(code),
  (e: unknown) => import('./program.js').then((p) => process.exit(p.reportError(e))),
);
