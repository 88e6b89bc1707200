/**
 * Files into and out of containers as tar streams over the Engine API (putArchive/getArchive):
 * the same calls work on a local socket, a remote daemon, Docker Desktop and Podman, and never
 * need a path the engine can see. In-memory files with tar-stream, files on disk with tar-fs.
 */
import type Docker from 'dockerode';
import { basename, dirname } from 'node:path';
import type { Readable } from 'node:stream';

export interface FileData {
  name: string;
  data: string | Buffer;
  /** Octal file mode, e.g. 0o600. */
  mode?: number;
}

/**
 * Write small files into `dir` of a container (created or running). With `owner`, the files and
 * every directory their names make belong to that uid:gid (a confined tool run writes beside them).
 */
export async function putFiles(docker: Docker, containerId: string, dir: string, files: FileData[], owner?: { uid: number; gid: number }): Promise<void> {
  const { pack } = await import('tar-stream');
  const tar = pack();
  const ids = owner ? { uid: owner.uid, gid: owner.gid } : {};
  if (owner) {
    for (const d of tarDirs(files.map((f) => f.name))) tar.entry({ name: d, type: 'directory', mode: 0o755, mtime: new Date(), ...ids });
  }
  for (const f of files) tar.entry({ name: f.name, mode: f.mode ?? 0o644, mtime: new Date(), ...ids }, typeof f.data === 'string' ? Buffer.from(f.data) : f.data);
  tar.finalize();
  await docker.getContainer(containerId).putArchive(tar as unknown as NodeJS.ReadableStream, { path: dir });
}

/** Pure: every directory the names make (`a/b/c` → `a`, `a/b`), parents first. */
export function tarDirs(names: string[]): string[] {
  const dirs = new Set<string>();
  for (const n of names) {
    const parts = n.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return [...dirs].sort((a, b) => a.split('/').length - b.split('/').length || a.localeCompare(b));
}

/** Stream one file of the client into `dir` of a container (large files: the cloud image). */
export async function putLocalFile(docker: Docker, containerId: string, dir: string, localPath: string, nameInTar = basename(localPath)): Promise<void> {
  const { pack } = await import('tar-fs');
  const tar = pack(dirname(localPath), {
    entries: [basename(localPath)],
    map: (h) => ({ ...h, name: nameInTar }),
  }) as unknown as NodeJS.ReadableStream;
  await docker.getContainer(containerId).putArchive(tar, { path: dir });
}

/** Stream a client directory's contents into `dir` of a container (a kernel build tree). */
export async function putLocalTree(docker: Docker, containerId: string, dir: string, localDir: string): Promise<void> {
  const { pack } = await import('tar-fs');
  await docker.getContainer(containerId).putArchive(pack(localDir) as unknown as NodeJS.ReadableStream, { path: dir });
}

/** Read the regular files under `path` of a container (a file or a directory) into memory. */
export async function getFiles(docker: Docker, containerId: string, path: string): Promise<Map<string, Buffer>> {
  const { extract } = await import('tar-stream');
  const stream = (await docker.getContainer(containerId).getArchive({ path })) as unknown as Readable;
  const out = new Map<string, Buffer>();
  const ex = extract();
  stream.pipe(ex);
  for await (const entry of ex) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    if (entry.header.type === 'file') {
      // Names are relative to the archived path's parent: drop that first component.
      const rel = entry.header.name.split('/').slice(1).join('/') || entry.header.name;
      out.set(rel, Buffer.concat(chunks));
    }
  }
  return out;
}

/**
 * Extract a container path (file or tree) into a client directory. `plain`: regular files and
 * directories only (links, devices and the like left out), owned by whoever runs this, not by the
 * archive's owners.
 */
export async function getTree(docker: Docker, containerId: string, path: string, localDir: string, opts: { plain?: boolean } = {}): Promise<void> {
  const { extract } = await import('tar-fs');
  const stream = (await docker.getContainer(containerId).getArchive({ path })) as unknown as Readable;
  await new Promise<void>((resolve, reject) => {
    type Options = NonNullable<Parameters<typeof extract>[1]>;
    const map: Options['map'] = (h) => ({ ...h, name: h.name.split('/').slice(1).join('/') || h.name, ...(opts.plain ? { mode: h.mode & 0o777 } : {}) });
    // tar-fs's `chown: false` (not in its type definitions): as root it would give the files the archive's owners.
    const plain = opts.plain ? { chown: false, ignore: (_name: string, h?: { type?: string }) => h?.type !== 'file' && h?.type !== 'directory' } : {};
    const ex = extract(localDir, { map, ...plain });
    ex.on('finish', () => resolve());
    ex.on('error', reject);
    stream.on('error', reject);
    stream.pipe(ex);
  });
}
