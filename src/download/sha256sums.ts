/** Parse a SHA256SUMS file ("<hex>  name" or "<hex> *name", as sha256sum writes) and look a file up in it. */
export function parseSha256Sums(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line);
    if (!m) continue;
    out.set((m[2] ?? '').replace(/^\.\//, ''), (m[1] ?? '').toLowerCase());
  }
  return out;
}

/** The SHA256SUMS URL that sits beside `fileUrl`, and the name to look up in it. */
export function sumsLocation(fileUrl: string): { sumsUrl: string; name: string } {
  const u = new URL(fileUrl);
  const name = decodeURIComponent(u.pathname.split('/').pop() ?? '');
  u.search = '';
  u.hash = '';
  return { sumsUrl: new URL('SHA256SUMS', u).toString(), name };
}

export function isSha256(text: string): boolean {
  return /^[0-9a-f]{64}$/.test(text);
}

/**
 * Why the SHA256SUMS beside `fileUrl` cannot vouch for it, or undefined: over plain http to another
 * machine, whoever answers the image answers its checksum too. Loopback and file: URLs are this
 * machine's own; https is checked by its certificate (and never redirected off https).
 */
export function unverifiableSums(fileUrl: string): string | undefined {
  const u = new URL(fileUrl);
  if (u.protocol !== 'http:') return undefined;
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const loopback = host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
  return loopback ? undefined : `${u.origin} is plain http: its SHA256SUMS comes over the same unauthenticated channel as the image`;
}
