#!/usr/bin/env node
/** m5dev entry point. */
import { reportError, run } from './program.js';

run(process.argv).then(
  (code) => process.exit(code),
  (e: unknown) => process.exit(reportError(e)),
);
