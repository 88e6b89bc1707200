/**
 * Resumable, verified downloads with undici. Bytes go to a staging file named by the digest they
 * must reach; a dropped connection is resumed with an HTTP Range request, and so is a download
 * whose process died (Ctrl-C, SIGTERM, kill -9, power loss): beside the staging file a small record
 * says which bytes were fsynced and which object they came from (URL, ETag/Last-Modified), and the
 * next run truncates to those bytes and asks for the rest with If-Range. A server that ignores
 * Range or an object that changed starts the file over. The file enters the store only when its
 * SHA-256 matches: nothing unverified is ever used.
 */
import { unverifiableSums } from './sha256sums.js';
import { closeSync, copyFileSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Agent } from 'undici';
import { ChecksumMismatchError, DiskFullError, DownloadError, M5devError } from '../errors.js';
import { BlobStore, sha256File } from './store.js';
import { withLock } from '../locks.js';

export interface DownloadProgress {
  received: number;
  total?: number;
  attempt: number;
}

export interface DownloadOptions {
  url: string;
  sha256: string;
  store: BlobStore;
  maxAttempts?: number;
  onProgress?: (p: DownloadProgress) => void;
  /** Another process is fetching the same blob: we wait for it (and then use its result). */
  onWait?: (holder: string) => void;
  signal?: AbortSignal;
  /** Base delay between attempts (doubles each time). */
  retryDelayMs?: number;
}

export interface DownloadResult {
  path: string;
  cached: boolean;
  attempts: number;
  /** Continued from bytes fetched earlier (by this run after a dropped connection, or by an earlier run). */
  resumed: boolean;
}

/** What the staging file holds: its first `durable` bytes were fsynced, from this URL and object. */
interface ResumeRecord {
  url: string;
  etag?: string;
  lastModified?: string;
  durable: number;
}

/** fsync and record the progress every this many bytes. */
const CHECKPOINT_BYTES = 4 * 1024 * 1024;

export async function fetchVerified(opts: DownloadOptions): Promise<DownloadResult> {
  const cached = (): DownloadResult => ({ path: opts.store.path(opts.sha256), cached: true, attempts: 0, resumed: false });
  if (opts.store.has(opts.sha256)) return cached();
  const name = opts.url.split('/').pop() ?? opts.url;
  return withLock(opts.store.home.root, `blob-${opts.sha256}`, { wait: true, what: `the download of ${name}`, onWait: opts.onWait }, async () => {
    if (opts.store.has(opts.sha256)) return cached(); // fetched by the process we waited for
    const part = opts.store.partialPath(opts.sha256);
    try {
      if (opts.url.startsWith('file:')) {
        copyFileSync(fileURLToPath(opts.url), part);
        return adoptVerified(opts, part, { attempts: 1, resumed: false });
      }
      let got = await fetchToFile(opts, part);
      if (got.resumed && (await sha256File(part)) !== opts.sha256) {
        // The kept bytes did not lead to the digest (an object that changed without a validator to
        // say so, or bytes lost by the disk): start over once, from nothing.
        opts.store.discard(part);
        got = await fetchToFile(opts, part);
        got.resumed = false;
      }
      return await adoptVerified(opts, part, got);
    } catch (e) {
      // The staging file and its record stay (unless the digest was wrong): the next run continues from them.
      if (e instanceof M5devError) throw e;
      if ((e as NodeJS.ErrnoException).code === 'ENOSPC') throw new DiskFullError(`downloading ${name}`, opts.store.home.tmp);
      throw new DownloadError(`Download of ${opts.url} failed: ${(e as Error).message}`);
    }
  });
}

async function adoptVerified(opts: DownloadOptions, part: string, got: { attempts: number; resumed: boolean }): Promise<DownloadResult> {
  const actual = await sha256File(part);
  if (actual !== opts.sha256) {
    opts.store.discard(part);
    throw new ChecksumMismatchError(opts.url, opts.sha256, actual);
  }
  const path = opts.store.adopt(part, opts.sha256);
  opts.store.discard(part); // its resume record
  return { path, cached: false, ...got };
}

/** The bytes of `part` an earlier run can vouch for: truncate to them (0 when nothing is known). */
function keptBytes(part: string, url: string): { offset: number; record?: ResumeRecord } {
  let record: ResumeRecord | undefined;
  try {
    record = JSON.parse(readFileSync(`${part}.json`, 'utf8')) as ResumeRecord;
  } catch {
    record = undefined;
  }
  const size = existsSync(part) ? statSync(part).size : 0;
  if (!record || record.url !== url || !Number.isSafeInteger(record.durable) || size === 0) {
    if (size > 0) truncateSync(part, 0);
    return { offset: 0 };
  }
  const offset = Math.min(record.durable, size);
  truncateSync(part, offset); // bytes past the last fsync may be garbage after a crash
  return { offset, record };
}

function writeRecord(part: string, record: ResumeRecord): void {
  writeFileSync(`${part}.json.tmp`, JSON.stringify(record));
  renameSync(`${part}.json.tmp`, `${part}.json`);
}

/** If-Range needs a strong ETag, else the date: the server sends the rest only of the same object. */
function ifRange(record: ResumeRecord | undefined): Record<string, string> {
  if (record?.etag && !record.etag.startsWith('W/')) return { 'if-range': record.etag };
  if (record?.lastModified) return { 'if-range': record.lastModified };
  return {};
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return typeof v === 'string' ? v : undefined;
}

async function fetchToFile(opts: DownloadOptions, part: string): Promise<{ attempts: number; resumed: boolean }> {
  const maxAttempts = opts.maxAttempts ?? 6;
  let { offset, record } = keptBytes(part, opts.url);
  let resumed = false;
  let lastError = '';
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    try {
      const res = await get(opts.url, {
        method: 'GET',
        headers: offset > 0 ? { range: `bytes=${offset}-`, ...ifRange(record) } : {},
        signal: opts.signal,
        headersTimeout: 30_000,
        bodyTimeout: 60_000,
      });
      if (res.statusCode === 416 && offset > 0) {
        await res.body.dump();
        return { attempts: attempt, resumed: true }; // already complete; the checksum decides
      }
      if (res.statusCode !== 200 && res.statusCode !== 206) {
        await res.body.dump();
        const err = new DownloadError(`GET ${opts.url} answered HTTP ${res.statusCode}`);
        if (res.statusCode >= 400 && res.statusCode < 500 && res.statusCode !== 408 && res.statusCode !== 429) throw err;
        lastError = err.message;
        await delay(opts, attempt);
        continue;
      }
      // 206 from where we stand: append. Anything else (200: Range ignored, or the object changed) starts over.
      const append = res.statusCode === 206 && offset > 0 && rangeStart(res.headers) === offset;
      if (res.statusCode === 206 && !append) {
        await res.body.dump();
        offset = 0;
        record = undefined;
        truncateSync(part, 0);
        continue;
      }
      if (append) resumed = true;
      record = { url: opts.url, etag: header(res.headers, 'etag'), lastModified: header(res.headers, 'last-modified'), durable: append ? offset : 0 };
      const total = totalSize(res.headers, append ? offset : 0);
      const received = await drainTo(res.body, part, record, (n) => opts.onProgress?.({ received: n, total, attempt }));
      offset = received;
      if (total !== undefined && received < total) throw new Error(`connection closed at ${received} of ${total} bytes`);
      return { attempts: attempt, resumed };
    } catch (e) {
      if (e instanceof DownloadError || (e as NodeJS.ErrnoException).code === 'ENOSPC') throw e;
      if (opts.signal?.aborted) throw new DownloadError(`Download of ${opts.url} was interrupted`);
      lastError = (e as Error).message;
      offset = existsSync(part) ? statSync(part).size : 0;
      await delay(opts, attempt);
    }
  }
  throw new DownloadError(`Download of ${opts.url} failed after ${maxAttempts} attempts: ${lastError}`);
}

function rangeStart(headers: Record<string, string | string[] | undefined>): number | undefined {
  const m = /^bytes (\d+)-/.exec(header(headers, 'content-range') ?? '');
  return m ? Number(m[1]) : undefined;
}

/**
 * Write the body with synchronous appends from its 'data' events, so the stream never pauses:
 * undici 7's HTTP/1 parser asserts (uncatchably) when a server closes the socket while the body
 * is paused under backpressure (nodejs/undici#5360, fixed only in undici 8). Every
 * CHECKPOINT_BYTES, and when the body ends or fails, the file is fsynced and the record updated.
 */
function drainTo(body: NodeJS.ReadableStream, file: string, record: ResumeRecord, onProgress: (received: number) => void): Promise<number> {
  const fd = openSync(file, record.durable > 0 ? 'a' : 'w');
  let received = record.durable;
  let lastReport = 0;
  const checkpoint = () => {
    fsyncSync(fd);
    writeRecord(file, { ...record, durable: received });
  };
  checkpoint();
  return new Promise<number>((resolve, reject) => {
    // Settled once: after a failed write the body may still end or fail, and the file is closed.
    let settled = false;
    const fail = (e: unknown) => {
      if (settled) return;
      settled = true;
      try {
        checkpoint();
      } catch {
        // the record keeps its last checkpoint
      }
      try {
        closeSync(fd);
      } finally {
        (body as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.(); // nothing more to read
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    };
    body.on('data', (chunk: Buffer) => {
      if (settled) return;
      try {
        writeSync(fd, chunk);
        if (Math.floor((received + chunk.length) / CHECKPOINT_BYTES) > Math.floor(received / CHECKPOINT_BYTES)) {
          received += chunk.length;
          checkpoint();
        } else received += chunk.length;
      } catch (e) {
        body.removeAllListeners('data');
        fail(e);
        return;
      }
      const now = Date.now();
      if (now - lastReport >= 500) {
        lastReport = now;
        onProgress(received);
      }
    });
    body.on('error', fail);
    body.once('end', () => {
      if (settled) return;
      try {
        checkpoint();
      } catch (e) {
        fail(e);
        return;
      }
      settled = true;
      try {
        closeSync(fd);
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      onProgress(received);
      resolve(received);
    });
  });
}

function totalSize(headers: Record<string, string | string[] | undefined>, offset: number): number | undefined {
  const range = headers['content-range'];
  if (typeof range === 'string') {
    const m = /\/(\d+)$/.exec(range);
    if (m) return Number(m[1]);
  }
  const len = headers['content-length'];
  return typeof len === 'string' ? offset + Number(len) : undefined;
}

function delay(opts: DownloadOptions, attempt: number): Promise<void> {
  const ms = (opts.retryDelayMs ?? 500) * 2 ** (attempt - 1);
  return new Promise((r) => setTimeout(r, Math.min(ms, 10_000)));
}

type Request = typeof import('undici').request;
type Http = { request: Request; dispatcher: Agent };
let http: Http | undefined;
/** undici, loaded on first use (commands that download nothing start faster). */
async function undici(): Promise<Http> {
  if (!http) {
    const { Agent: AgentClass, request } = await import('undici');
    http = { request, dispatcher: new AgentClass() };
  }
  return http;
}

const MAX_REDIRECTS = 5;

/**
 * Pure: why a redirect from `from` to `to` must not be followed, or undefined. https only to https;
 * plain http is trusted on loopback only (this machine's own server), so never to another machine.
 */
export function redirectRefusal(from: string, to: string): string | undefined {
  const a = new URL(from);
  const b = new URL(to);
  if (a.protocol === 'https:' && b.protocol !== 'https:') return `from https to ${b.protocol.replace(/:$/, '')} (${b.origin})`;
  if (!unverifiableSums(from) && unverifiableSums(to)) return `from this machine to plain http on ${b.origin}`;
  return undefined;
}

/**
 * GET `url`, following redirects (mirrors and release pages redirect), at most MAX_REDIRECTS. A
 * redirect from https to anything else is refused: the digest check stands on what https
 * delivered (a SHA256SUMS, or the image), and a downgrade would let anyone on the path answer.
 */
async function get(url: string, options: Omit<NonNullable<Parameters<Request>[1]>, 'dispatcher'>): Promise<Awaited<ReturnType<Request>>> {
  const { request, dispatcher } = await undici();
  let current = url;
  for (let hops = 0; ; hops++) {
    const res = await request(current, { ...options, dispatcher });
    const location = header(res.headers, 'location');
    if (res.statusCode < 300 || res.statusCode >= 400 || res.statusCode === 304 || !location) return res;
    await res.body.dump();
    if (hops === MAX_REDIRECTS) throw new DownloadError(`GET ${url}: more than ${MAX_REDIRECTS} redirects`);
    const next = new URL(location, current).toString();
    const refused = redirectRefusal(current, next);
    if (refused) throw new DownloadError(`GET ${url}: refused a redirect ${refused}`, 'A download is never continued over a weaker channel; point --image-url at the final location itself (https, or with --image-sha256).');
    current = next;
  }
}

/** Small text fetch (SHA256SUMS). */
export async function fetchText(url: string, signal?: AbortSignal): Promise<string> {
  try {
    if (url.startsWith('file:')) {
      const { readFileSync } = await import('node:fs');
      return readFileSync(fileURLToPath(url), 'utf8');
    }
    const res = await get(url, { signal, headersTimeout: 30_000, bodyTimeout: 30_000 });
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new DownloadError(`GET ${url} answered HTTP ${res.statusCode}`, 'Pin the digest with --image-sha256, or point --image-url at a mirror that serves SHA256SUMS.');
    }
    return await res.body.text();
  } catch (e) {
    if (e instanceof DownloadError) throw e;
    throw new DownloadError(`GET ${url} failed: ${(e as Error).message}`);
  }
}
