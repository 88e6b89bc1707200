/**
 * Content-addressed store: blobs/sha256/<hex>. A blob appears only by an atomic rename of a
 * file whose SHA-256 was checked, so whatever is in the store is the content its name says.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { HomeLayout } from '../paths.js';

export class BlobStore {
  constructor(readonly home: HomeLayout) {}

  path(sha256: string): string {
    return join(this.home.blobs, sha256);
  }

  has(sha256: string): boolean {
    return existsSync(this.path(sha256)) && statSync(this.path(sha256)).isFile();
  }

  /**
   * The staging path of a blob in flight, on the store's filesystem (so `adopt` can rename). Named
   * by the digest it must reach, so a later process finds it and continues (see downloader.ts).
   */
  partialPath(sha256: string): string {
    mkdirSync(this.home.tmp, { recursive: true });
    return join(this.home.tmp, `${sha256}.part`);
  }

  /** Move a verified staging file into the store. */
  adopt(tempFile: string, sha256: string): string {
    mkdirSync(this.home.blobs, { recursive: true });
    const dest = this.path(sha256);
    renameSync(tempFile, dest);
    return dest;
  }

  /** Drop a staging file and its resume record. */
  discard(tempFile: string): void {
    rmSync(tempFile, { force: true });
    rmSync(`${tempFile}.json`, { force: true });
  }
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}
