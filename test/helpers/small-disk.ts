/** Small disks that really fill up: tmpfs mounts of a test's own (root only), undone in its afterAll/afterEach. */
import { execFileSync } from 'node:child_process';

export interface SmallDisks {
  /** A tmpfs of `size` (mount(8)'s spelling: 2m, 512k) at `dir`; remounted with the new size when it is one already. */
  mount(dir: string, size: string): void;
  /** Unmount them all, newest first. */
  unmountAll(): void;
}

export function smallDisks(): SmallDisks {
  const mounts: string[] = [];
  return {
    mount(dir, size) {
      if (mounts.includes(dir)) execFileSync('mount', ['-o', `remount,size=${size}`, dir]);
      else {
        execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'm5dev-test-full', dir]);
        mounts.push(dir);
      }
    },
    unmountAll() {
      for (const m of mounts.splice(0).reverse()) execFileSync('umount', ['-l', m]);
    },
  };
}
