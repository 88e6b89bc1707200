/**
 * Copy a file sparsely: runs of zeros are left as holes in the copy (seek past them, then set the
 * length), so a file the guest wrote with a far offset costs its data, not its apparent size.
 */
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';

const CHUNK = 1 << 16;

/** Pure: whether a buffer is all zero bytes. */
export function allZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** `from` into a new file `to` (mode 0644, the caller's): same bytes, zero chunks as holes; `seen` gets every chunk read, in order. */
export function copySparse(from: string, to: string, seen?: (chunk: Buffer) => void): void {
  const src = openSync(from, 'r');
  try {
    const dst = openSync(to, 'wx', 0o644);
    try {
      const size = fstatSync(src).size;
      const buf = Buffer.alloc(CHUNK);
      for (let at = 0; at < size; ) {
        const n = readSync(src, buf, 0, Math.min(CHUNK, size - at), at);
        if (n <= 0) break;
        const part = buf.subarray(0, n);
        seen?.(part);
        if (!allZero(part)) writeSync(dst, part, 0, n, at);
        at += n;
      }
      ftruncateSync(dst, size);
    } finally {
      closeSync(dst);
    }
  } finally {
    closeSync(src);
  }
}
