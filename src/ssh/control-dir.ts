/**
 * Where ssh's shared-connection sockets live: a directory only this user can enter, so no other
 * local user can find, pre-create or ride a control socket. $XDG_RUNTIME_DIR/m5dev when the
 * session has one (private by definition), else $TMPDIR/m5dev-UID, created 0700 and checked.
 */
import { chmodSync, lstatSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { session } from '../session.js';

export function privateControlDir(env: Readonly<NodeJS.ProcessEnv> = session().env): string {
  const uid = process.getuid?.() ?? 0;
  const dir = env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'm5dev') : join(tmpdir(), `m5dev-${uid}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== uid) {
    throw new UsageError(`${dir} is not a directory of yours`, `Someone else made it: remove it, or set TMPDIR to a private directory.`);
  }
  if ((st.mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
  return dir;
}
