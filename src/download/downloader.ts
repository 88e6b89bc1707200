/**
 * Resumable, verified downloads with undici. Bytes go to a staging file; a dropped connection
 * is resumed with an HTTP Range request; the file enters the store only when its SHA-256 matches.
 * On any final failure (or abort) the staging file is deleted: no half file is ever kept.
 */
import { closeSync, copyFileSync, existsSync, openSync, statSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Agent } from 'undici';
import { ChecksumMismatchError, DownloadError } from '../errors.js';
import { BlobStore, sha256File } from './store.js';
import { onCleanup } from '../cleanup.js';

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
  signal?: AbortSignal;
  /** Base delay between attempts (doubles each time). */
  retryDelayMs?: number;
}

export interface DownloadResult {
  path: string;
  cached: boolean;
  attempts: number;
  resumed: boolean;
}

export async function fetchVerified(opts: DownloadOptions): Promise<DownloadResult> {
  if (opts.store.has(opts.sha256)) return { path: opts.store.path(opts.sha256), cached: true, attempts: 0, resumed: false };
  const tmp = opts.store.tempPath(opts.url.split('/').pop() ?? 'download');
  const undo = onCleanup(`partial download ${tmp}`, () => opts.store.discard(tmp));
  try {
    const { attempts, resumed } = opts.url.startsWith('file:')
      ? (copyFileSync(fileURLToPath(opts.url), tmp), { attempts: 1, resumed: false })
      : await fetchToFile(opts, tmp);
    const actual = await sha256File(tmp);
    if (actual !== opts.sha256) throw new ChecksumMismatchError(opts.url, opts.sha256, actual);
    const path = opts.store.adopt(tmp, opts.sha256);
    return { path, cached: false, attempts, resumed };
  } catch (e) {
    opts.store.discard(tmp);
    if (e instanceof ChecksumMismatchError || e instanceof DownloadError) throw e;
    throw new DownloadError(`Download of ${opts.url} failed: ${(e as Error).message}`);
  } finally {
    undo();
  }
}

async function fetchToFile(opts: DownloadOptions, tmp: string): Promise<{ attempts: number; resumed: boolean }> {
  const maxAttempts = opts.maxAttempts ?? 6;
  let resumed = false;
  let lastError = '';
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const offset = existsSync(tmp) ? statSync(tmp).size : 0;
    try {
      const { request, dispatcher } = await undici();
      const res = await request(opts.url, {
        method: 'GET',
        headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
        signal: opts.signal,
        dispatcher,
        headersTimeout: 30_000,
        bodyTimeout: 60_000,
      });
      if (res.statusCode === 416 && offset > 0) {
        await res.body.dump();
        return { attempts: attempt, resumed }; // already complete; the checksum decides
      }
      if (res.statusCode !== 200 && res.statusCode !== 206) {
        await res.body.dump();
        const err = new DownloadError(`GET ${opts.url} answered HTTP ${res.statusCode}`);
        if (res.statusCode >= 400 && res.statusCode < 500 && res.statusCode !== 408 && res.statusCode !== 429) throw err;
        lastError = err.message;
        await delay(opts, attempt);
        continue;
      }
      const append = res.statusCode === 206 && offset > 0;
      if (append) resumed = true;
      const total = totalSize(res.headers, append ? offset : 0);
      const received = await drainTo(res.body, tmp, append, append ? offset : 0, (n) => opts.onProgress?.({ received: n, total, attempt }));
      if (total !== undefined && received < total) throw new Error(`connection closed at ${received} of ${total} bytes`);
      return { attempts: attempt, resumed };
    } catch (e) {
      if (e instanceof DownloadError) throw e;
      if (opts.signal?.aborted) throw new DownloadError(`Download of ${opts.url} was interrupted`);
      lastError = (e as Error).message;
      await delay(opts, attempt);
    }
  }
  throw new DownloadError(`Download of ${opts.url} failed after ${maxAttempts} attempts: ${lastError}`);
}

/**
 * Write the body with synchronous appends from its 'data' events, so the stream never pauses:
 * undici 7's HTTP/1 parser asserts (uncatchably) when a server closes the socket while the body
 * is paused under backpressure (nodejs/undici#5360, fixed only in undici 8).
 */
function drainTo(body: NodeJS.ReadableStream, file: string, append: boolean, start: number, onProgress: (received: number) => void): Promise<number> {
  const fd = openSync(file, append ? 'a' : 'w');
  let received = start;
  let lastReport = 0;
  return new Promise<number>((resolve, reject) => {
    const fail = (e: unknown) => {
      closeSync(fd);
      reject(e instanceof Error ? e : new Error(String(e)));
    };
    body.on('data', (chunk: Buffer) => {
      try {
        writeSync(fd, chunk);
      } catch (e) {
        body.removeAllListeners('data');
        fail(e);
        return;
      }
      received += chunk.length;
      const now = Date.now();
      if (now - lastReport >= 500) {
        lastReport = now;
        onProgress(received);
      }
    });
    body.once('error', fail);
    body.once('end', () => {
      closeSync(fd);
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

type Http = { request: typeof import('undici').request; dispatcher: ReturnType<Agent['compose']> };
let http: Http | undefined;
/**
 * undici, loaded on first use (commands that download nothing start faster), with one agent
 * that follows redirects (mirrors and release pages redirect).
 */
async function undici(): Promise<Http> {
  if (!http) {
    const { Agent: AgentClass, interceptors, request } = await import('undici');
    http = { request, dispatcher: new AgentClass().compose(interceptors.redirect({ maxRedirections: 5 })) };
  }
  return http;
}

/** Small text fetch (SHA256SUMS). */
export async function fetchText(url: string, signal?: AbortSignal): Promise<string> {
  try {
    if (url.startsWith('file:')) {
      const { readFileSync } = await import('node:fs');
      return readFileSync(fileURLToPath(url), 'utf8');
    }
    const { request, dispatcher } = await undici();
    const res = await request(url, { signal, dispatcher, headersTimeout: 30_000, bodyTimeout: 30_000 });
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
