/** Parse a SHA256SUMS file ("<hex>  name" or "<hex> *name", as sha256sum writes) and look a file up in it. */
export function parseSha256Sums(text: string): Map<string, string> {
  const out = new Map<string, string>();
  // An entry is a whole line of its own shape (a blank line or a comment is not one).
  for (const line of text.split('\n')) {
    const [, sha, name] = /^([0-9a-fA-F]{64}) [ *](.+)/.exec(line.trim()) ?? [];
    if (sha && name) out.set(name.replace(/^\.\//, ''), sha.toLowerCase());
  }
  return out;
}

/** The SHA256SUMS URL that sits beside `fileUrl`, and the name to look up in it. */
export function sumsLocation(fileUrl: string): { sumsUrl: string; name: string } {
  const u = new URL(fileUrl);
  const name = decodeURIComponent(u.pathname.split('/').pop() ?? '');
  // Resolved against the file's URL: its query and fragment do not carry over.
  return { sumsUrl: new URL('SHA256SUMS', u).toString(), name };
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
