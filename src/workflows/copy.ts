/**
 * `m5dev cp SRC DEST`: files and trees between the host and the guest, like `docker cp`, as tar
 * streams over the guest's SSH (so it works on every engine, and in container ssh mode). One side
 * is `guest:PATH`. DEST an existing directory: SRC goes inside it under its own name; otherwise
 * SRC becomes DEST. Either way it lands whole: unpacked beside the target, then moved into place.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, posix, resolve } from 'node:path';
import { CopyError, UsageError } from '../errors.js';
import { onCleanup } from '../cleanup.js';
import { shScript } from '../shell.js';
import type { GuestSsh } from '../ssh/client.js';

const GUEST = 'guest:';
/** The name the copied file or tree has inside the tar stream, on both sides. */
const ENTRY = 'm5dev-cp';

export type CopyPlan = { to: 'guest'; local: string; remote: string } | { to: 'host'; remote: string; local: string };

/** Pure: which way, and which paths (exactly one side must be `guest:PATH`). */
export function copyPlan(src: string, dest: string): CopyPlan {
  const s = src.startsWith(GUEST);
  const d = dest.startsWith(GUEST);
  if (s === d) throw new UsageError(s ? 'both sides are in the guest' : 'neither side is in the guest', 'Name the guest side guest:PATH, e.g. `m5dev cp ./src guest:/home/ubuntu/src` or `m5dev cp guest:/var/log/syslog .`');
  const remote = (s ? src : dest).slice(GUEST.length);
  if (remote === '') throw new UsageError('guest: needs a path', 'e.g. guest:/home/ubuntu/src (relative paths start in the guest user\'s home)');
  return s ? { to: 'host', remote, local: dest } : { to: 'guest', local: src, remote };
}

/** In the guest: unpack stdin beside the target, then move it into place (a directory into an existing one merges). */
const UNPACK = `set -e
dest=$1; name=$2
if [ -d "$dest" ]; then target="$dest/$name"; else target="$dest"; fi
parent=$(dirname "$target"); mkdir -p "$parent"
t=$(mktemp -d "$parent/.m5dev-cp.XXXXXX"); trap 'rm -rf "$t"' EXIT
tar -x --no-same-owner -C "$t"
if [ -d "$target" ] && [ ! -d "$t/${ENTRY}" ]; then echo "cannot overwrite directory $target with a file" >&2; exit 1; fi
if [ -d "$target" ]; then cp -a "$t/${ENTRY}/." "$target/"; else rm -f "$target"; mv "$t/${ENTRY}" "$target"; fi
echo "$target" >&2`;

/** In the guest: pack the source under its own name (renamed to ENTRY here as it is unpacked). */
const PACK = `set -e
src=$1
[ -e "$src" ] || { echo "no such file or directory: $src" >&2; exit 1; }
cd "$(dirname "$src")"
tar -c -- "$(basename "$src")"`;

export async function copy(ssh: GuestSsh, plan: CopyPlan): Promise<{ target: string }> {
  const tar = await import('tar-fs');
  if (plan.to === 'guest') {
    const local = resolve(plan.local);
    if (!existsSync(local)) throw new UsageError(`${plan.local} does not exist`);
    const name = basename(local);
    const input = tar.pack(dirname(local), { entries: [name], map: (h) => ({ ...h, name: ENTRY + h.name.slice(name.length) }) }) as unknown as NodeJS.ReadableStream;
    const res = await ssh.pipe([shScript(UNPACK, 'm5dev-cp', [plan.remote, name])], { input });
    if (res.exitCode !== 0) throw new CopyError(`copying ${plan.local} to guest:${plan.remote} failed (exit ${res.exitCode})`, res.stderr);
    return { target: `guest:${res.stderr.trim().split('\n').pop()}` };
  }
  const dest = resolve(plan.local);
  const target = existsSync(dest) && statSync(dest).isDirectory() ? join(dest, basename(plan.remote.replace(/\/+$/, ''))) : dest;
  mkdirSync(dirname(target), { recursive: true });
  const staging = mkdtempSync(join(dirname(target), '.m5dev-cp-'));
  const undo = onCleanup(`partial copy ${staging}`, () => rmSync(staging, { recursive: true, force: true }));
  try {
    const name = posix.basename(plan.remote.replace(/(.)\/+$/, '$1'));
    const output = tar.extract(staging, { map: (h) => ({ ...h, name: ENTRY + h.name.slice(name.length) }) }) as unknown as NodeJS.WritableStream;
    const res = await ssh.pipe([shScript(PACK, 'm5dev-cp', [plan.remote])], { output });
    if (res.exitCode !== 0) throw new CopyError(`copying guest:${plan.remote} to ${plan.local} failed (exit ${res.exitCode})`, res.stderr);
    const got = join(staging, ENTRY);
    const isDir = statSync(got).isDirectory();
    if (existsSync(target) && statSync(target).isDirectory()) {
      if (!isDir) throw new CopyError(`cannot overwrite directory ${target} with a file`, '');
      cpSync(got, target, { recursive: true });
    } else renameSync(got, target);
    return { target };
  } finally {
    rmSync(staging, { recursive: true, force: true });
    undo();
  }
}
