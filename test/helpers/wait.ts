/** Waiting in e2e tests for what another process writes in its own time. */
import { existsSync, readFileSync } from 'node:fs';

/** The file's text once it matches `re`, or as it is after `ms` (the caller's expect then says what it held). */
export async function fileWhenMatching(path: string, re: RegExp, ms = 60_000): Promise<string> {
  const read = () => (existsSync(path) ? readFileSync(path, 'utf8') : '');
  for (const deadline = Date.now() + ms; !re.test(read()) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 250));
  return read();
}
