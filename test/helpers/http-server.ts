/** A loopback HTTP file server for tests: Range support, and faults on demand (drop mid-body). */
import { createServer, type Server } from 'node:http';
import { readFileSync, statSync, createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';

export interface FileServer {
  url: string;
  requests: { path: string; range?: string }[];
  /** Drop the connection after this many body bytes, for the next `times` requests of a path. */
  dropAfter(path: string, bytes: number, times: number): void;
  close(): Promise<void>;
}

export async function serveDir(dir: string, opts: { connectionClose?: boolean } = {}): Promise<FileServer> {
  const drops = new Map<string, { bytes: number; times: number }>();
  const requests: FileServer['requests'] = [];
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push({ path, range: req.headers.range });
    const file = join(dir, path.replace(/^\/+/, ''));
    let size: number;
    try {
      size = statSync(file).size;
    } catch {
      res.writeHead(404).end('not found');
      return;
    }
    if (opts.connectionClose) res.setHeader('connection', 'close');
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m) {
      start = Number(m[1]);
      if (start >= size) {
        res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
        return;
      }
      res.writeHead(206, { 'content-length': size - start, 'content-range': `bytes ${start}-${size - 1}/${size}`, 'accept-ranges': 'bytes' });
    } else {
      res.writeHead(200, { 'content-length': size, 'accept-ranges': 'bytes' });
    }
    const drop = drops.get(path);
    if (drop && drop.times > 0) {
      drop.times--;
      const data = readFileSync(file).subarray(start, start + drop.bytes);
      res.write(data, () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    createReadStream(file, { start }).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    dropAfter: (path, bytes, times) => drops.set(path, { bytes, times }),
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
