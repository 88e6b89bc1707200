/**
 * Redirects of downloads over real loopback HTTP and HTTPS: followed within a scheme, never from
 * https to plain http (the digest check stands on what https delivered). The https side runs in a
 * child process that trusts a certificate made for this test (NODE_EXTRA_CA_CERTS is read at start).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttp, type Server } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { fetchText, redirectRefusal } from '../../src/download/downloader.js';
import { unverifiableSums } from '../../src/download/sha256sums.js';

const SUMS = `${'a'.repeat(64)} *disk.img\n`;
const DOWNLOADER_JS = resolve(import.meta.dirname, '../../dist/download/downloader.js');
let dir = '';
let plain: Server;
let secure: Server;
let plainUrl = '';
let secureUrl = '';

/** /SHA256SUMS answers; /to/URL redirects (302) to URL. */
const handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
  const path = req.url ?? '/';
  if (path === '/SHA256SUMS') return res.writeHead(200).end(SUMS);
  if (path.startsWith('/to/')) return res.writeHead(302, { location: decodeURIComponent(path.slice(4)) }).end();
  res.writeHead(404).end();
};
const listen = (s: Server) => new Promise<string>((ok) => s.listen(0, '127.0.0.1', () => ok(String((s.address() as AddressInfo).port))));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'm5dev-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  plain = createHttp(handler);
  secure = createHttps({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, handler);
  plainUrl = `http://127.0.0.1:${await listen(plain)}`;
  secureUrl = `https://127.0.0.1:${await listen(secure)}`;
});
afterAll(() => {
  plain?.close();
  secure?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** fetchText(url) in a child that trusts the test certificate: its stdout, or its error message. */
function fetchOverTls(url: string): Promise<{ ok: boolean; out: string }> {
  const script = `import { fetchText } from ${JSON.stringify(DOWNLOADER_JS)};\ntry { process.stdout.write(await fetchText(${JSON.stringify(url)})); } catch (e) { process.stdout.write('ERROR ' + e.message); process.exitCode = 1; }`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((ok) => child.on('close', (code) => ok({ ok: code === 0, out })));
}

describe('download redirects', () => {
  it('follows a redirect within http, and within https', async () => {
    expect(await fetchText(`${plainUrl}/to/${encodeURIComponent(`${plainUrl}/SHA256SUMS`)}`)).toBe(SUMS);
    expect(await fetchOverTls(`${secureUrl}/to/${encodeURIComponent(`${secureUrl}/SHA256SUMS`)}`)).toEqual({ ok: true, out: SUMS });
  });

  it('refuses a redirect from https to plain http', async () => {
    const r = await fetchOverTls(`${secureUrl}/to/${encodeURIComponent(`${plainUrl}/SHA256SUMS`)}`);
    expect(r.ok).toBe(false);
    expect(r.out).toMatch(/^ERROR GET https:\/\/127\.0\.0\.1:\d+\/to\/\S+: refused a redirect from https to http \(http:\/\/127\.0\.0\.1:\d+\)/);
  });

  it('follows 5 redirects and stops at the sixth', async () => {
    let url = `${plainUrl}/SHA256SUMS`;
    for (let i = 0; i < 5; i++) url = `${plainUrl}/to/${encodeURIComponent(url)}`;
    expect(await fetchText(url)).toBe(SUMS);
    await expect(fetchText(`${plainUrl}/to/${encodeURIComponent(url)}`)).rejects.toThrow(/more than 5 redirects/);
  });

  it('judges each hop: https only to https, this machine\'s plain http never to another machine', () => {
    expect(redirectRefusal('https://a.example/x', 'https://b.example/y')).toBeUndefined();
    expect(redirectRefusal('https://a.example/x', 'http://a.example/y')).toMatch(/^from https to http/);
    expect(redirectRefusal('http://127.0.0.1:8080/x', 'http://127.0.0.1:9090/y')).toBeUndefined();
    expect(redirectRefusal('http://127.0.0.1:8080/x', 'https://mirror.example/y')).toBeUndefined();
    expect(redirectRefusal('http://127.0.0.1:8080/x', 'http://mirror.example/y')).toMatch(/^from this machine to plain http on http:\/\/mirror\.example/);
    expect(redirectRefusal('http://mirror.example/x', 'http://other.example/y')).toBeUndefined(); // no trust to lose: its sums are refused anyway
  });
});

describe('a SHA256SUMS that cannot vouch for its image', () => {
  it('is one over plain http to another machine; loopback, file: and https are not', () => {
    expect(unverifiableSums('http://mirror.example/img/disk.img')).toMatch(/plain http/);
    expect(unverifiableSums('http://10.0.0.2:8080/disk.img')).toMatch(/plain http/);
    for (const ok of ['https://cloud-images.ubuntu.com/x.img', 'http://127.0.0.1:8080/x.img', 'http://localhost/x.img', 'http://[::1]:81/x.img', 'file:///tmp/x.img']) {
      expect(unverifiableSums(ok)).toBeUndefined();
    }
  });
});
