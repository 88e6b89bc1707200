/**
 * A user's disk image for `m5dev run`, judged by its own bytes, pure: raw or qcow2, told apart by
 * qcow2's magic (never by QEMU's probing, which a raw image can fool). A qcow2 that names another
 * file (a backing file, an external data file) is refused: the engine would open that path beside
 * the image, so an image from elsewhere could show the guest any file the engine can read.
 */
export type DiskFormat = 'raw' | 'qcow2';

/** How many leading bytes the judgement reads. */
export const DISK_HEADER_BYTES = 104;

const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"
/** qcow2 v3 incompatible feature bit 2: the guest data lives in an external file. */
const EXTERNAL_DATA_FILE = 1n << 2n;

export type DiskJudgement = { ok: true; format: DiskFormat } | { ok: false; reason: string };

export function judgeDiskImage(header: Buffer, size: number): DiskJudgement {
  if (size === 0) return { ok: false, reason: 'it is empty' };
  if (header.length < 4 || header.readUInt32BE(0) !== QCOW2_MAGIC) return { ok: true, format: 'raw' };
  if (header.length < 72) return { ok: false, reason: 'its qcow2 header is cut short' };
  const version = header.readUInt32BE(4);
  if (version !== 2 && version !== 3) return { ok: false, reason: `it is qcow2 version ${version} (2 and 3 are known)` };
  if (header.readBigUInt64BE(8) !== 0n) return { ok: false, reason: 'it is a qcow2 with a backing file (another file the engine would open)' };
  if (version === 3) {
    if (header.length < 80) return { ok: false, reason: 'its qcow2 header is cut short' };
    if ((header.readBigUInt64BE(72) & EXTERNAL_DATA_FILE) !== 0n) return { ok: false, reason: 'it is a qcow2 with an external data file (another file the engine would open)' };
  }
  return { ok: true, format: 'qcow2' };
}
