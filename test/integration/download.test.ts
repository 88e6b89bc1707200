/** Real HTTP over loopback: verified, resumable downloads into the content-addressed store. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
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

/** Wait until `check` holds (polling), or fail after `ms`. */
async function until(check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const durable = (store: BlobStore, digest: string): number => {
  try {
    return (JSON.parse(readFileSync(`${store.partialPath(digest)}.json`, 'utf8')) as { durable: number }).durable;
  } catch {
    return -1;
  }
};

/** Start a download and stop it (abort) once `bytes` are fsynced: what a later run finds. */
async function interrupted(srv: FileServer, store: BlobStore, file: string, digest: string, bytes: number): Promise<void> {
  srv.stallAfter(`/${file}`, bytes + 1024 * 1024);
  const abort = new AbortController();
  const run = fetchVerified({ url: `${srv.url}/${file}`, sha256: digest, store, signal: abort.signal, retryDelayMs: 10 }).catch((e: unknown) => e);
  await until(() => durable(store, digest) >= bytes);
  abort.abort();
  expect(await run).toBeInstanceOf(DownloadError);
}

describe('a download continued by a later run', () => {
  const big = randomBytes(12 * 1024 * 1024 + 5);
  const bigSha = createHash('sha256').update(big).digest('hex');
  let srvDir: string;
  beforeAll(() => {
    srvDir = mkdtempSync(join(tmpdir(), 'm5dev-srv-'));
    writeFileSync(join(srvDir, 'big.img'), big);
  });

  it('after kill -9: truncates to the fsynced bytes, asks for the rest with If-Range, verifies the whole', async () => {
    const srv = await serveDir(srvDir);
    try {
      const { home, store } = freshStore();
      srv.stallAfter('/big.img', 9 * 1024 * 1024);
      // A real process, killed with SIGKILL while it downloads: no handler, no cleanup runs.
      const child = spawn(process.execPath, ['--input-type=module', '-e', `
        const { fetchVerified } = await import(${JSON.stringify(new URL('../../dist/download/downloader.js', import.meta.url).href)});
        const { BlobStore } = await import(${JSON.stringify(new URL('../../dist/download/store.js', import.meta.url).href)});
        const { layout } = await import(${JSON.stringify(new URL('../../dist/paths.js', import.meta.url).href)});
        await fetchVerified({ url: ${JSON.stringify(`${srv.url}/big.img`)}, sha256: ${JSON.stringify(bigSha)}, store: new BlobStore(layout(${JSON.stringify(home.root)})) });
      `], { stdio: 'inherit' });
      await until(() => durable(store, bigSha) >= 8 * 1024 * 1024);
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const kept = durable(store, bigSha);
      // Bytes written after the last fsync may be anything after a crash: they must not be trusted.
      appendFileSync(store.partialPath(bigSha), randomBytes(300_000));
      const before = srv.bytesSent();
      const res = await fetchVerified({ url: `${srv.url}/big.img`, sha256: bigSha, store });
      expect(res.resumed).toBe(true);
      const last = srv.requests.at(-1)!;
      expect(last.range).toBe(`bytes=${kept}-`);
      expect(last.ifRange).toMatch(/^"/);
      expect(last.status).toBe(206);
      expect(srv.bytesSent() - before).toBe(big.length - kept);
      expect(readFileSync(res.path).equals(big)).toBe(true);
      expect(leftovers(home)).toEqual([]);
    } finally {
      await srv.close();
    }
  });

  it('starts over when the object changed (the ETag differs): no mix of two objects', async () => {
    const dir2 = mkdtempSync(join(tmpdir(), 'm5dev-srv-'));
    writeFileSync(join(dir2, 'big.img'), big);
    const srv = await serveDir(dir2);
    try {
      const { store } = freshStore();
      const next = Buffer.concat([randomBytes(1024), big]);
      const nextSha = createHash('sha256').update(next).digest('hex');
      await interrupted(srv, store, 'big.img', nextSha, 4 * 1024 * 1024);
      writeFileSync(join(dir2, 'big.img'), next);
      const res = await fetchVerified({ url: `${srv.url}/big.img`, sha256: nextSha, store });
      expect(srv.requests.at(-1)).toMatchObject({ range: expect.stringMatching(/^bytes=\d+-$/), ifRange: expect.stringMatching(/^"/), status: 200 });
      expect(res.resumed).toBe(false);
      expect(readFileSync(res.path).equals(next)).toBe(true);
    } finally {
      await srv.close();
    }
  });

  it('starts over when the server ignores Range', async () => {
    const srv = await serveDir(srvDir, { ignoreRange: true });
    try {
      const { store } = freshStore();
      await interrupted(srv, store, 'big.img', bigSha, 4 * 1024 * 1024);
      const res = await fetchVerified({ url: `${srv.url}/big.img`, sha256: bigSha, store });
      expect(srv.requests.at(-1)).toMatchObject({ range: expect.stringMatching(/^bytes=/), status: 200 });
      expect(res.resumed).toBe(false);
      expect(readFileSync(res.path).equals(big)).toBe(true);
    } finally {
      await srv.close();
    }
  });

  it('without validators, a changed object fails the digest once, then downloads whole', async () => {
    const dir3 = mkdtempSync(join(tmpdir(), 'm5dev-srv-'));
    writeFileSync(join(dir3, 'big.img'), big);
    const srv = await serveDir(dir3, { validators: false });
    try {
      const { home, store } = freshStore();
      const next = randomBytes(big.length);
      const nextSha = createHash('sha256').update(next).digest('hex');
      await interrupted(srv, store, 'big.img', nextSha, 4 * 1024 * 1024);
      writeFileSync(join(dir3, 'big.img'), next);
      const res = await fetchVerified({ url: `${srv.url}/big.img`, sha256: nextSha, store });
      // The resumed request's tail came from the new object and its head from the old: the digest caught it.
      expect(srv.requests.slice(-2).map((r) => r.status)).toEqual([206, 200]);
      expect(readFileSync(res.path).equals(next)).toBe(true);
      expect(leftovers(home)).toEqual([]);
    } finally {
      await srv.close();
    }
  });

  it('two fetches of one blob at once: the second waits for the lock and uses the first one\'s result', async () => {
    const srv = await serveDir(srvDir);
    try {
      const { store } = freshStore();
      const waits: string[] = [];
      const before = srv.requests.length;
      const [a, b] = await Promise.all([
        fetchVerified({ url: `${srv.url}/big.img`, sha256: bigSha, store }),
        new Promise((r) => setTimeout(r, 30)).then(() => fetchVerified({ url: `${srv.url}/big.img`, sha256: bigSha, store, onWait: (h) => waits.push(h) })),
      ]);
      expect(srv.requests.length - before).toBe(1);
      expect([a.cached, b.cached]).toEqual([false, true]);
      expect(waits).toHaveLength(1);
    } finally {
      await srv.close();
    }
  });
});
