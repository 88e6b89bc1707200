/**
 * The guest's serial console as it comes (`m5dev run` streams it): read from where the last read
 * ended, from the instance's console file (directly when the engine shares it, else beside QEMU).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { IN_CONTAINER, STORED } from '../vm/instance.js';
import type { Storage } from '../engine/storage.js';
import type { VmExec } from '../vmhost/vm-host.js';
import { terminalText } from '../terminal-text.js';

/** At most this much per read (a guest that floods its console is followed, not buffered whole). */
const MAX_READ = 4 << 20;

export interface ConsoleFollower {
  /** The bytes written since the last call. */
  next(): Promise<Buffer>;
}

export function followConsole(storage: Pick<Storage, 'clientPath' | 'read'>, vm: Pick<VmExec, 'capture'>): ConsoleFollower {
  let offset = 0;
  const local = storage.clientPath(STORED.console);
  const readLocal = (path: string): Buffer => {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      return Buffer.alloc(0); // QEMU has not made it yet
    }
    try {
      const size = fstatSync(fd).size;
      if (size < offset) offset = 0; // a new launch's console (QEMU truncates it): read from its start
      const buf = Buffer.alloc(Math.max(0, Math.min(size - offset, MAX_READ)));
      const n = buf.length ? readSync(fd, buf, 0, buf.length, offset) : 0;
      return buf.subarray(0, n);
    } finally {
      closeSync(fd);
    }
  };
  // The offset this read starts at, then its bytes in base64; a file shorter than the offset is a new launch's, read from 0.
  const REMOTE_READ = 's=$(stat -c %s "$2" 2>/dev/null) || s=0; o=$1; [ "$s" -ge "$o" ] || o=0; echo "$o"; tail -c +"$((o + 1))" "$2" 2>/dev/null | head -c "$3" | base64 | tr -d "\\n"';
  const readRemote = async (): Promise<Buffer> => {
    try {
      const r = await vm.capture(['sh', '-c', REMOTE_READ, 'sh', String(offset), IN_CONTAINER.console, String(MAX_READ)]);
      const [from, data = ''] = r.stdout.split('\n');
      if (r.exitCode === 0 && /^\d+$/.test(from ?? '')) {
        offset = Number(from);
        return Buffer.from(data.trim(), 'base64');
      }
    } catch {
      // QEMU's container has stopped (the guest powered off): read the storage itself.
    }
    const all = (await storage.read(STORED.console)) ?? Buffer.alloc(0);
    if (all.length < offset) offset = 0;
    return all.subarray(offset, offset + MAX_READ);
  };
  return {
    next: async () => {
      const got = local ? readLocal(local) : await readRemote();
      offset += got.length;
      return got;
    },
  };
}

/** The longest unfinished line kept back waiting for its end. */
const MAX_LINE = 64 * 1024;

/** Console bytes to whole lines of safe text (terminal-text.ts): a line is shown once it ends, the rest at `end`. */
export class ConsoleLines {
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';

  push(bytes: Buffer): string {
    this.pending += this.decoder.write(bytes);
    const cut = this.pending.lastIndexOf('\n') + 1;
    let whole = this.pending.slice(0, cut);
    this.pending = this.pending.slice(cut);
    // A line without end (a guest that never prints a newline) is shown as it grows past MAX_LINE, not kept.
    if (this.pending.length > MAX_LINE) {
      whole += this.pending;
      this.pending = '';
    }
    return terminalText(whole);
  }

  end(): string {
    const rest = this.pending + this.decoder.end();
    this.pending = '';
    return rest ? terminalText(`${rest}\n`) : '';
  }
}
