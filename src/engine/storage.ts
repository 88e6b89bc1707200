/**
 * Where the engine keeps m5dev's data (instance disks, the blob cache, kernel trees), behind one
 * interface. `LocalDirStorage`: a client directory the engine sees at the same path (a local
 * rootful or rootless engine, Podman, Docker Desktop's shared folders): containers bind it and the
 * client reads it directly. `VolumeStorage`: a labelled named volume on the engine (a remote
 * engine, a CI dind service): the client reaches it only through the Engine API, with short helper
 * containers and tar streams. Workflows use only this interface, never a path of the engine.
 */
import { engineMount, type Mount } from '../docker/mounts.js';
import { closeSync, constants, copyFileSync, cpSync, existsSync, lstatSync, readdirSync, realpathSync, fstatSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ChecksumMismatchError } from '../errors.js';
import { statfs } from 'node:fs/promises';
import { getFiles, getTree, putFiles, putLocalFile, putLocalTree, type FileData } from '../docker/archive.js';
import { sha256File } from '../download/store.js';
import { copySparse } from '../sparse-copy.js';
import type { VmExec } from '../vmhost/vm-host.js';
import { scriptCommand } from '../scripts.js';
import { isNotFound, type DockerClient } from '../docker/client.js';
import { ensureVolume, removeVolume } from '../docker/volumes.js';
import { runTool, withIdleContainer } from '../docker/containers.js';
import { LABELS, baseLabels } from '../docker/labels.js';

/** Size and mtime of a stored file (mtime as the storage reports it; compare only stamps of one storage). */
export interface FileStamp {
  file: string;
  size: number;
  mtimeMs: number;
  /** Bytes actually allocated (sparse files). */
  allocated: number;
}

/** A running VM that mounts a storage, to read it through (see Storage.readTail). */
export interface TailVia {
  vm: Pick<VmExec, 'capture'>;
  mountedAt: string;
}

export interface Storage {
  /** This storage mounted at `target` in a container. */
  bind(target: string, readOnly?: boolean): Mount;
  /**
   * Where the stored file `name` is on this machine, when the engine shares the client's directory
   * (then writing it here is writing it there); else undefined (it exists only on the engine).
   */
  clientPath(name: string): string | undefined;
  /** Create it (with its labels) before any container mounts it: an engine would create it bare. */
  ensure(): Promise<void>;
  /** Stamps of those of `names` that exist. */
  stat(names: string[]): Promise<Map<string, FileStamp>>;
  read(name: string): Promise<Buffer | undefined>;
  /**
   * The last `maxBytes` of a file ('' when missing). `via`: a running VM whose container mounts
   * this storage at `mountedAt` (cheaper than a helper container; a client directory reads directly).
   */
  readTail(name: string, maxBytes: number, via?: TailVia): Promise<string>;
  write(files: FileData[]): Promise<void>;
  /** Copy a client file in as `name`, verified by sha256 where it lands; appears whole or not at all. */
  importFile(localPath: string, name: string, sha256: string): Promise<void>;
  /** Copy a client directory in as the directory `name` (staged under another name, then renamed). */
  importTree(localDir: string, name: string): Promise<void>;
  /** SHA-256 of a stored file, computed where it is stored. */
  sha256(name: string): Promise<string>;
  /** Remove a directory and everything in it (nothing when it does not exist). */
  removeTree(name: string): Promise<void>;
  /** The regular files under directory `name` (paths relative to it, sorted); none when it does not exist. */
  listTree(name: string): Promise<{ path: string; size: number }[]>;
  /**
   * Copy the regular files and directories under `name` into the client directory `localDir`, owned
   * by whoever runs m5dev; links, devices and the like are left out.
   */
  exportTree(name: string, localDir: string): Promise<void>;
  remove(names: string[]): Promise<void>;
  /** Flush `names` to stable storage and rename each [from, to] in order (a commit). */
  syncRename(pairs: [string, string][]): Promise<void>;
  /** Delete everything. */
  destroy(): Promise<void>;
  /** Bytes free on the filesystem that holds it, and a name for that place. */
  free(): Promise<{ bytes: number; where: string }>;
}

/** Two paths name one file (links resolved; a path that does not exist yet is compared as written). */
function samePath(a: string, b: string): boolean {
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return resolve(p);
    }
  };
  return real(a) === real(b);
}

export class LocalDirStorage implements Storage {
  constructor(readonly localDir: string) {}

  clientPath(name: string): string {
    return this.p(name);
  }

  async ensure(): Promise<void> {
    mkdirSync(this.localDir, { recursive: true });
  }

  bind(target: string, readOnly = false): Mount {
    mkdirSync(this.localDir, { recursive: true });
    return { kind: 'bind', source: this.localDir, target, readOnly };
  }

  private p(name: string): string {
    return join(this.localDir, name);
  }

  async stat(names: string[]): Promise<Map<string, FileStamp>> {
    const out = new Map<string, FileStamp>();
    for (const n of names) {
      if (!existsSync(this.p(n))) continue;
      const st = statSync(this.p(n));
      out.set(n, { file: n, size: st.size, mtimeMs: st.mtimeMs, allocated: st.blocks * 512 });
    }
    return out;
  }

  async read(name: string): Promise<Buffer | undefined> {
    return existsSync(this.p(name)) ? readFileSync(this.p(name)) : undefined;
  }

  async readTail(name: string, maxBytes: number): Promise<string> {
    if (!existsSync(this.p(name))) return '';
    const fd = openSync(this.p(name), 'r');
    try {
      const size = fstatSync(fd).size;
      const len = Math.min(size, maxBytes);
      const buf = Buffer.alloc(len);
      readSync(fd, buf, 0, len, size - len);
      return buf.toString('utf8');
    } finally {
      closeSync(fd);
    }
  }

  async write(files: FileData[]): Promise<void> {
    for (const f of files) {
      mkdirSync(dirname(this.p(f.name)), { recursive: true });
      writeFileSync(this.p(f.name), f.data, { mode: f.mode ?? 0o644 });
    }
  }

  /** The client's directories are this storage already when the engine shares them. */
  /** In place already: nothing to do. Else copied (links as links) under another name, then renamed whole. */
  async importTree(localDir: string, name: string): Promise<void> {
    if (samePath(localDir, this.p(name))) return;
    const staging = this.p(`${name}.incoming`);
    const old = this.p(`${name}.replaced`);
    rmSync(staging, { recursive: true, force: true });
    rmSync(old, { recursive: true, force: true });
    try {
      cpSync(localDir, staging, { recursive: true, verbatimSymlinks: true });
      // The old tree goes aside only when the new one is complete, and is removed once it is in place.
      if (existsSync(this.p(name))) renameSync(this.p(name), old);
      renameSync(staging, this.p(name));
    } finally {
      rmSync(staging, { recursive: true, force: true });
      rmSync(old, { recursive: true, force: true });
    }
  }

  async sha256(name: string): Promise<string> {
    return sha256File(this.p(name));
  }

  async listTree(name: string): Promise<{ path: string; size: number }[]> {
    return walkFiles(this.p(name)).map(({ rel, size }) => ({ path: rel, size }));
  }

  async exportTree(name: string, localDir: string): Promise<void> {
    for (const { rel } of walkFiles(this.p(name))) {
      const to = join(localDir, rel);
      mkdirSync(dirname(to), { recursive: true });
      // A copy, not a link or the stored file's owner: the invoking user's file; holes stay holes.
      rmSync(to, { force: true });
      copySparse(join(this.p(name), rel), to);
    }
  }

  async removeTree(name: string): Promise<void> {
    rmSync(this.p(name), { recursive: true, force: true });
  }

  /** The client's blob store is this directory already when the engine shares it. */
  /** In place already (the engine reads this directory): nothing to do. Else a verified copy, renamed whole. */
  async importFile(localPath: string, name: string, sha256: string): Promise<void> {
    if (samePath(localPath, this.p(name))) return;
    const staging = this.p(`.incoming-${name}`);
    mkdirSync(dirname(staging), { recursive: true });
    // A fresh file: whatever had that name (a link) is removed, and the copy never writes through one.
    rmSync(staging, { recursive: true, force: true });
    try {
      copyFileSync(localPath, staging, constants.COPYFILE_EXCL);
      const got = await sha256File(staging);
      if (got !== sha256) throw new ChecksumMismatchError(localPath, sha256, got, 'The copy was discarded: the file changed while it was copied; copy it again when it is complete.');
      renameSync(staging, this.p(name));
    } finally {
      rmSync(staging, { force: true });
    }
  }

  async remove(names: string[]): Promise<void> {
    for (const n of names) rmSync(this.p(n), { force: true });
  }

  async syncRename(pairs: [string, string][]): Promise<void> {
    for (const [from, to] of pairs) {
      const fd = openSync(this.p(from), 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(this.p(from), this.p(to));
    }
  }

  async destroy(): Promise<void> {
    rmSync(this.localDir, { recursive: true, force: true });
  }

  async free(): Promise<{ bytes: number; where: string }> {
    mkdirSync(this.localDir, { recursive: true });
    const s = await statfs(this.localDir);
    return { bytes: s.bavail * s.bsize, where: this.localDir };
  }
}

/** Where a helper container mounts the volume. */
const AT = '/m5dev-store';

export class VolumeStorage implements Storage {
  clientPath(): undefined {
    return undefined;
  }

  constructor(
    private readonly docker: DockerClient,
    readonly volume: string,
    private readonly labels: Record<string, string>,
    /** An image present on the engine with sh and coreutils (the toolchain or its base image). */
    private readonly helperImage: () => string,
  ) {}

  bind(target: string, readOnly = false): Mount {
    return { kind: 'volume', source: this.volume, target, readOnly };
  }

  async ensure(): Promise<void> {
    await ensureVolume(this.docker, this.volume, this.labels);
  }

  /** A helper container with the volume mounted (not started): files go in and out by tar. */
  private async withHelper<T>(cmd: string[], use: (id: string) => Promise<T>): Promise<T> {
    await this.ensure();
    // A tool container of this session (swept on failure), not the volume's own labels.
    return withIdleContainer(this.docker, { image: this.helperImage(), cmd, labels: baseLabels('tool', this.labels[LABELS.home]), mounts: [engineMount(this.bind(AT))] }, use);
  }

  /** One operation of sh/tool/volume.sh on the volume (mounted at the helper's AT) as a tool run: its output, or a ToolError. */
  private async sh(op: string, args: string[], what: string): Promise<string> {
    await this.ensure();
    return runTool(this.docker, {
      image: this.helperImage(),
      cmd: scriptCommand('volume', [AT, op, ...args]),
      binds: [this.bind(AT)],
      home: this.labels[LABELS.home] ?? '',
      description: `${what} on volume ${this.volume}`,
    });
  }

  async stat(names: string[]): Promise<Map<string, FileStamp>> {
    const out = new Map<string, FileStamp>();
    if (names.length === 0) return out;
    const text = await this.sh('stat', names, 'stat');
    for (const line of text.split('\n')) {
      const [file, size, mtime, blocks, blockSize] = line.trim().split('|');
      if (!file || blockSize === undefined) continue;
      out.set(file, { file, size: Number(size), mtimeMs: Number(mtime) * 1000, allocated: Number(blocks) * Number(blockSize) });
    }
    return out;
  }

  async read(name: string): Promise<Buffer | undefined> {
    return this.withHelper(['true'], async (id) => {
      try {
        return (await getFiles(this.docker, id, `${AT}/${name}`)).values().next().value;
      } catch (e) {
        if (isNotFound(e)) return undefined;
        throw e;
      }
    });
  }

  async readTail(name: string, maxBytes: number, via?: TailVia): Promise<string> {
    const args = [String(maxBytes), name];
    if (via) return (await via.vm.capture(scriptCommand('volume', [via.mountedAt, 'tail', ...args]))).stdout;
    return this.sh('tail', args, 'read');
  }

  async write(files: FileData[]): Promise<void> {
    await this.withHelper(['true'], (id) => putFiles(this.docker, id, AT, files));
  }

  async importFile(localPath: string, name: string, sha256: string): Promise<void> {
    const staging = `.incoming-${name}`;
    await this.withHelper(['true'], (id) => putLocalFile(this.docker, id, AT, localPath, staging));
    // Verified where it lands: only a file whose digest matches takes the final name.
    await this.sh('verify-move', [staging, name, sha256], `copying ${name}`);
  }

  async importTree(localDir: string, name: string): Promise<void> {
    const staging = `${name}.incoming`;
    await this.sh('stage', [staging], `staging ${name}`);
    await this.withHelper(['true'], (id) => putLocalTree(this.docker, id, `${AT}/${staging}`, localDir));
    await this.sh('replace', [staging, name], `copying ${name}`);
  }

  async listTree(name: string): Promise<{ path: string; size: number }[]> {
    const out = await this.sh('list', [name], `listing ${name}`);
    return out
      .split('\n')
      .filter((l) => l.includes('|'))
      .map((l) => ({ size: Number(l.slice(0, l.indexOf('|'))), path: l.slice(l.indexOf('|') + 1) }))
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  async exportTree(name: string, localDir: string): Promise<void> {
    await this.withHelper(['true'], (id) => getTree(this.docker, id, `${AT}/${name}`, localDir, { plain: true }));
  }

  async sha256(name: string): Promise<string> {
    return (await this.sh('sha256', [name], `sha256 of ${name}`)).trim();
  }

  async removeTree(name: string): Promise<void> {
    await this.sh('rm-tree', [name], `removing ${name}`);
  }

  async remove(names: string[]): Promise<void> {
    if (names.length === 0) return;
    await this.sh('rm', names, 'remove');
  }

  async syncRename(pairs: [string, string][]): Promise<void> {
    await this.sh('sync-rename', pairs.flat(), 'commit');
  }

  async free(): Promise<{ bytes: number; where: string }> {
    const out = await this.sh('df', [], 'df');
    const avail = Number(out.trim().split(/\s+/)[3]);
    return { bytes: avail * 1024, where: `the engine's volume ${this.volume}` };
  }

  async destroy(): Promise<void> {
    await removeVolume(this.docker, this.volume);
  }
}

/** Regular files below `root` (no link followed), relative paths sorted; none when `root` is not a directory. */
function walkFiles(root: string): { rel: string; size: number }[] {
  const out: { rel: string; size: number }[] = [];
  const walk = (dir: string, prefix: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(join(dir, entry.name), rel);
      else if (entry.isFile()) out.push({ rel, size: lstatSync(join(dir, entry.name)).size });
    }
  };
  if (existsSync(root) && lstatSync(root).isDirectory()) walk(root, '');
  return out.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}
