/** Real HTTP over loopback: verified, resumable downloads into the content-addressed store. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveDir, type FileServer } from '../helpers/http-server.js';
import { fetchVerified, fetchText } from '../../src/download/downloader.js';
import { BlobStore } from '../../src/download/store.js';
import { layout } from '../../src/paths.js';
import { ChecksumMismatchError, DownloadError } from '../../src/errors.js';

const content = randomBytes(3 * 1024 * 1024 + 17);
const sha = createHash('sha256').update(content).digest('hex');
let server: FileServer;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'm5dev-srv-'));
  writeFileSync(join(dir, 'disk.img'), content);
  writeFileSync(join(dir, 'SHA256SUMS'), `${sha} *disk.img\n`);
  server = await serveDir(dir);
});
afterAll(() => server.close());

const freshStore = () => {
  const home = layout(mkdtempSync(join(tmpdir(), 'm5dev-home-')));
  return { home, store: new BlobStore(home) };
};
const leftovers = (home: ReturnType<typeof layout>) => (existsSync(home.tmp) ? readdirSync(home.tmp) : []);

describe('fetchVerified', () => {
  it('downloads, verifies and stores by digest; the second call is a cache hit', async () => {
    const { home, store } = freshStore();
    const first = await fetchVerified({ url: `${server.url}/disk.img`, sha256: sha, store });
    expect(first.cached).toBe(false);
    expect(first.path).toBe(join(home.blobs, sha));
    expect(readFileSync(first.path).equals(content)).toBe(true);
    const before = server.requests.length;
    const second = await fetchVerified({ url: `${server.url}/disk.img`, sha256: sha, store });
    expect(second.cached).toBe(true);
    expect(server.requests.length).toBe(before);
    expect(leftovers(home)).toEqual([]);
  });

  it('resumes with a Range request when the server drops mid-download', async () => {
    const { home, store } = freshStore();
    server.dropAfter('/disk.img', 1024 * 1024, 2);
    const res = await fetchVerified({ url: `${server.url}/disk.img`, sha256: sha, store, retryDelayMs: 10 });
    expect(res.resumed).toBe(true);
    expect(res.attempts).toBe(3);
    const ranged = server.requests.filter((r) => r.range);
    expect(ranged.map((r) => r.range)).toEqual(expect.arrayContaining(['bytes=1048576-', 'bytes=2097152-']));
    expect(readFileSync(res.path).equals(content)).toBe(true);
    expect(leftovers(home)).toEqual([]);
  });

  it('rejects a wrong checksum and keeps nothing', async () => {
    const { home, store } = freshStore();
    const wrong = 'f'.repeat(64);
    await expect(fetchVerified({ url: `${server.url}/disk.img`, sha256: wrong, store })).rejects.toBeInstanceOf(ChecksumMismatchError);
    expect(store.has(wrong)).toBe(false);
    expect(existsSync(home.blobs) ? readdirSync(home.blobs) : []).toEqual([]);
    expect(leftovers(home)).toEqual([]);
  });

  it('gives up on a missing file without retrying, keeping nothing', async () => {
    const { home, store } = freshStore();
    await expect(fetchVerified({ url: `${server.url}/nope.img`, sha256: sha, store })).rejects.toThrow(/HTTP 404/);
    expect(leftovers(home)).toEqual([]);
  });

  it('fails cleanly when nothing listens', async () => {
    const { home, store } = freshStore();
    const err = await fetchVerified({ url: 'http://127.0.0.1:9/x.img', sha256: sha, store, maxAttempts: 2, retryDelayMs: 5 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(leftovers(home)).toEqual([]);
  });

  it('survives servers that close the connection after each body (HTTP/1.0 style)', async () => {
    const closing = await serveDir(dir, { connectionClose: true });
    try {
      const { store } = freshStore();
      const res = await fetchVerified({ url: `${closing.url}/disk.img`, sha256: sha, store });
      expect(readFileSync(res.path).equals(content)).toBe(true);
    } finally {
      await closing.close();
    }
  });

  it('reads SHA256SUMS', async () => {
    expect(await fetchText(`${server.url}/SHA256SUMS`)).toContain(sha);
  });
});
