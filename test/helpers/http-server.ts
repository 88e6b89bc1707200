/**
 * A loopback HTTP file server for tests: Range with If-Range, ETag/Last-Modified validators, and
 * faults on demand (drop mid-body, stall mid-body, ignore Range).
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import { readFileSync, statSync, createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';

export interface FileServer {
  url: string;
  requests: { path: string; range?: string; ifRange?: string; status: number }[];
  /** Body bytes written so far, over all requests. */
  bytesSent(): number;
  /** Drop the connection after this many body bytes, for the next `times` requests of a path. */
  dropAfter(path: string, bytes: number, times: number): void;
  /** Send this many body bytes of the next request of a path, then hold the connection open. */
  stallAfter(path: string, bytes: number): void;
  close(): Promise<void>;
}

export interface ServeOptions {
  connectionClose?: boolean;
  /** Send ETag and Last-Modified (default true). */
  validators?: boolean;
  /** Answer every request with the whole file (a server without Range support). */
  ignoreRange?: boolean;
}

export async function serveDir(dir: string, opts: ServeOptions = {}): Promise<FileServer> {
  const drops = new Map<string, { bytes: number; times: number }>();
  const stalls = new Map<string, number>();
  const requests: FileServer['requests'] = [];
  let sent = 0;
  const held = new Set<ServerResponse>();
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const entry = { path, range: req.headers.range, ifRange: req.headers['if-range'] as string | undefined, status: 0 };
    requests.push(entry);
    const file = join(dir, path.replace(/^\/+/, ''));
    let size: number;
    let mtime: Date;
    try {
      ({ size, mtime } = statSync(file));
    } catch {
      res.writeHead(404).end('not found');
      entry.status = 404;
      return;
    }
    const etag = `"${size}-${mtime.getTime()}"`;
    const lastModified = mtime.toUTCString();
    const headers: Record<string, string | number> = { 'accept-ranges': opts.ignoreRange ? 'none' : 'bytes' };
    if (opts.validators !== false) Object.assign(headers, { etag, 'last-modified': lastModified });
    if (opts.connectionClose) res.setHeader('connection', 'close');
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const sameObject = entry.ifRange === undefined || entry.ifRange === etag || entry.ifRange === lastModified;
    if (m && !opts.ignoreRange && sameObject) {
      start = Number(m[1]);
      if (start >= size) {
        res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
        entry.status = 416;
        return;
      }
      res.writeHead(206, { ...headers, 'content-length': size - start, 'content-range': `bytes ${start}-${size - 1}/${size}` });
      entry.status = 206;
    } else {
      res.writeHead(200, { ...headers, 'content-length': size });
      entry.status = 200;
    }
    const drop = drops.get(path);
    const stall = stalls.get(path);
    if (stall !== undefined) {
      stalls.delete(path);
      const data = readFileSync(file).subarray(start, start + stall);
      sent += data.length;
      held.add(res);
      res.write(data);
      return;
    }
    if (drop && drop.times > 0) {
      drop.times--;
      const data = readFileSync(file).subarray(start, start + drop.bytes);
      sent += data.length;
      res.write(data, () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    const stream = createReadStream(file, { start });
    stream.on('data', (c) => (sent += c.length));
    stream.pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    bytesSent: () => sent,
    dropAfter: (path, bytes, times) => drops.set(path, { bytes, times }),
    stallAfter: (path, bytes) => stalls.set(path, bytes),
    close: () => new Promise((r) => {
      for (const res of held) res.socket?.destroy();
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}
