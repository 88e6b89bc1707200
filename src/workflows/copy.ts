/**
 * `m5dev cp SRC DEST`: files and trees between the host and the guest, like `docker cp`, as tar
 * streams over the guest's SSH (so it works on every engine, and in container ssh mode). One side
 * is `guest:PATH`. DEST an existing directory: SRC goes inside it under its own name; otherwise
 * SRC becomes DEST. Either way it lands whole: unpacked beside the target, then moved into place.
 */
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, posix, relative, resolve } from 'node:path';
import { CopyError, UsageError } from '../errors.js';
import { INSTANCE_NAME_RE } from '../paths.js';
import { onCleanup } from '../cleanup.js';
import { guestScript } from '../ssh/guest-command.js';
import type { GuestSsh } from '../ssh/client.js';

/** The name the copied file or tree has inside the tar stream, on both sides. */
const ENTRY = 'm5dev-cp';

/** `instance` undefined: the command's --name (the side was spelled guest:PATH). */
export type CopyPlan = { to: 'guest'; local: string; remote: string; instance?: string } | { to: 'host'; remote: string; local: string; instance?: string };

/**
 * One side of `m5dev cp`, as docker cp, limactl cp and scp read it: `NAME:PATH` names an instance
 * (`guest:` the command's own); a path with a colon before any slash is a guest side, so a local
 * file with a colon in its name is written `./a:b`.
 */
export function parseCopySide(spec: string): { instance: string | undefined; path: string } | undefined {
  const colon = spec.indexOf(':');
  if (colon <= 0 || spec.slice(0, colon).includes('/')) return undefined;
  const name = spec.slice(0, colon);
  return { instance: name === 'guest' ? undefined : name, path: spec.slice(colon + 1) };
}

/** Pure: which way, which instance and which paths (exactly one side is NAME:PATH or guest:PATH). */
export function copyPlan(src: string, dest: string, instanceExists: (name: string) => boolean = () => true): CopyPlan {
  const s = parseCopySide(src);
  const d = parseCopySide(dest);
  const how = 'Name the guest side NAME:PATH (an instance) or guest:PATH (--name\'s), e.g. `m5dev cp ./src default:/home/ubuntu/src` or `m5dev cp guest:/var/log/syslog .`; a local path with a colon is written ./a:b.';
  if (s && d) throw new UsageError('both sides are in a guest', how);
  const side = s ?? d;
  if (!side) throw new UsageError('neither side is in the guest', how);
  const spec = s ? src : dest;
  if (side.instance !== undefined && !(INSTANCE_NAME_RE.test(side.instance) && instanceExists(side.instance))) {
    throw new UsageError(`${spec}: there is no instance "${side.instance}"`, `A local path with a colon is written ./${spec}; an instance's side is NAME:PATH (\`m5dev status\` lists them).`);
  }
  if (side.path === '') throw new UsageError(`${spec} needs a path`, 'e.g. guest:/home/ubuntu/src (relative paths start in the guest user\'s home)');
  // One spelling of the guest path: no doubled or trailing slash (the target it prints is then clean).
  const remote = side.path === '/' ? '/' : posix.normalize(side.path).replace(/\/+$/, '');
  return s ? { to: 'host', remote, local: dest, instance: side.instance } : { to: 'guest', local: src, remote, instance: side.instance };
}

export async function copy(ssh: GuestSsh, plan: CopyPlan): Promise<{ target: string }> {
  const tar = await import('tar-fs');
  if (plan.to === 'guest') {
    const local = resolve(plan.local);
    if (!existsSync(local)) throw new UsageError(`${plan.local} does not exist`);
    const name = basename(local);
    const input = tar.pack(dirname(local), { entries: [name], map: (h) => ({ ...h, name: ENTRY + h.name.slice(name.length) }) }) as unknown as NodeJS.ReadableStream;
    const res = await ssh.pipe(guestScript('cpUnpack', [plan.remote, name, ENTRY]), { input });
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
    // A guest is untrusted: a link in its tree may point only inside that tree (checked against where
    // the tree lands, not the staging directory), and nothing keeps the guest's owners.
    const escapes: string[] = [];
    type Options = NonNullable<Parameters<typeof tar.extract>[1]>;
    const options = {
      chown: false,
      // No setuid, setgid or sticky bit from a guest: run as root, that would be a setuid-root file.
      // A hard link names its target from the archive's root (the tree's own name first): renamed alike.
      map: (h) => {
        const linkname = (h as { linkname?: string }).linkname;
        const moved = h.type === 'link' && linkname?.startsWith(name) ? { linkname: ENTRY + linkname.slice(name.length) } : {};
        return { ...h, ...moved, name: ENTRY + h.name.slice(name.length), mode: h.mode & 0o777 };
      },
      ignore: (_path, h) => {
        if (!h || (h.type !== 'symlink' && h.type !== 'link')) return false;
        const entry = h.name.startsWith(ENTRY) ? h.name.slice(ENTRY.length).replace(/^\/+/, '') : h.name;
        const linkname = (h as { linkname?: string }).linkname ?? '';
        const target = h.type === 'link' ? (linkname.startsWith(`${ENTRY}/`) ? linkname.slice(ENTRY.length + 1) : `../${linkname}`) : linkname;
        if (!linkEscapes(entry, h.type, target)) return false;
        escapes.push(`${entry} -> ${linkname}`);
        return true; // not made; the copy is refused below
      },
    } as Options;
    const output = tar.extract(staging, options) as unknown as NodeJS.WritableStream;
    // The stream's end is not the extraction's: its last files are still being written when the
    // guest's tar is done. Nothing is judged, moved or removed before the extraction has finished
    // (its own error is the copy's, and never an unhandled one).
    const extracted = new Promise<void>((ok, fail) => {
      output.once('finish', ok);
      output.once('error', fail);
    });
    extracted.catch(() => undefined);
    const res = await ssh.pipe(guestScript('cpPack', [plan.remote]), { output }).catch((e: unknown) => {
      if (escapes.length) return { exitCode: -1, stderr: '' };
      throw new CopyError(`copying guest:${plan.remote} to ${plan.local} failed: ${(e as Error).message}`, '');
    });
    if (res.exitCode === 0) {
      await extracted.catch((e: unknown) => {
        throw new CopyError(`copying guest:${plan.remote} to ${plan.local} failed: ${(e as Error).message}`, '');
      });
    }
    if (escapes.length) {
      throw new CopyError(`guest:${plan.remote} holds a link that leads out of the copied tree: ${escapes.slice(0, 3).join(', ')}${escapes.length > 3 ? ` and ${escapes.length - 3} more` : ''}; nothing was copied`, '');
    }
    if (res.exitCode !== 0) throw new CopyError(`copying guest:${plan.remote} to ${plan.local} failed (exit ${res.exitCode})`, res.stderr);
    const got = join(staging, ENTRY);
    // Links by string are not enough (a -> ., b -> a/.., …): every link must also resolve, by the
    // kernel, inside the copied tree as it stands in the staging directory.
    const outside = linksLeaving(got);
    if (outside.length) {
      throw new CopyError(`guest:${plan.remote} holds a link that leads out of the copied tree: ${outside.slice(0, 3).join(', ')}${outside.length > 3 ? ` and ${outside.length - 3} more` : ''}; nothing was copied`, '');
    }
    const isDir = statSync(got).isDirectory();
    if (existsSync(target) && statSync(target).isDirectory()) {
      if (!isDir) throw new CopyError(`cannot overwrite directory ${target} with a file`, '');
      cpSync(got, target, { recursive: true, verbatimSymlinks: true });
    } else renameSync(got, target);
    return { target };
  } finally {
    rmSync(staging, { recursive: true, force: true });
    undo();
  }
}

/**
 * Pure: does a link at `entry` (its path inside the copied tree) lead out of the tree? A symlink's
 * target is read from the link's directory; a hard link's from the tree's root. Absolute targets
 * always leave it (they would point into the host's own files).
 */
export function linkEscapes(entry: string, type: 'symlink' | 'link', target: string): boolean {
  if (target === '' || posix.isAbsolute(target)) return true;
  const from = type === 'symlink' ? posix.dirname(`root/${entry}`) : 'root';
  const resolved = posix.normalize(posix.join(from, target));
  return !(resolved === 'root' || resolved.startsWith('root/'));
}

/** The links under `root` that resolve (through any chain of links) outside it; dangling ones are judged by linkEscapes. */
export function linksLeaving(root: string): string[] {
  const out: string[] = [];
  const realRoot = realpathSync.native(root);
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isSymbolicLink()) {
        let real: string | undefined;
        try {
          real = realpathSync.native(full);
        } catch {
          real = undefined; // dangling, or a loop: it leads nowhere on the host
        }
        if (real !== undefined && real !== realRoot && !real.startsWith(`${realRoot}/`)) out.push(`${relative(root, full)} -> ${readlinkSync(full)}`);
      } else if (entry.isDirectory()) walk(full);
    }
  };
  if (lstatSync(root).isDirectory()) walk(root);
  else if (lstatSync(root).isSymbolicLink()) out.push(`${basename(root)} -> ${readlinkSync(root)}`);
  return out;
}
