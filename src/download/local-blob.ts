/**
 * A file of this machine (a user's disk image) into the blob store, named by its content: hashed
 * where it lies (a store that holds that digest already is done), else copied sparsely while hashed
 * again, and adopted only when the copy has the digest first read: a file that changed meanwhile
 * never enters the store under a name that is not its content.
 */
import { createHash, randomBytes } from 'node:crypto';
import { withLock } from '../locks.js';
import { DownloadError } from '../errors.js';
import { copySparse } from '../sparse-copy.js';
import { sha256File, type BlobStore } from './store.js';

export async function storeLocalFile(store: BlobStore, path: string): Promise<{ sha256: string; copied: boolean }> {
  const sha256 = await sha256File(path);
  if (store.has(sha256)) return { sha256, copied: false };
  // One copy of a digest at a time (as a download of it is): the second finds the first's.
  return withLock(store.home.root, `blob-${sha256}`, { wait: true, what: `the copy of ${path} into the blob cache` }, () => copyIn(store, path, sha256));
}

async function copyIn(store: BlobStore, path: string, sha256: string): Promise<{ sha256: string; copied: boolean }> {
  if (store.has(sha256)) return { sha256, copied: false };
  const part = `${store.partialPath(sha256)}.${process.pid}.${randomBytes(4).toString('hex')}.local`;
  try {
    const hash = createHash('sha256');
    copySparse(path, part, (chunk) => hash.update(chunk));
    const copied = hash.digest('hex');
    if (copied !== sha256) throw new DownloadError(`${path} changed while it was copied (sha256 ${sha256.slice(0, 12)}… then ${copied.slice(0, 12)}…)`, 'Run again once nothing writes the image.');
    store.adopt(part, sha256);
    return { sha256, copied: true };
  } finally {
    store.discard(part);
  }
}
