/** Host port checks: is 127.0.0.1:port free, and the first free one from a start. */
import { createServer } from 'node:net';

export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

export async function firstFreePort(start: number, taken: ReadonlySet<number>, limit = 100, isFree: (p: number) => Promise<boolean> = isPortFree): Promise<number | undefined> {
  for (let p = start; p < start + limit && p <= 65535; p++) {
    if (!taken.has(p) && (await isFree(p))) return p;
  }
  return undefined;
}
