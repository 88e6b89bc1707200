/** Progress lines for task output: download percentages, and throttled build output. */
export function throttledLines(show: (line: string) => void, intervalMs = 2000, now: () => number = Date.now): (line: string) => void {
  let last = -Infinity;
  let count = 0;
  return (line: string) => {
    count++;
    const t = now();
    if (t - last < intervalMs) return;
    last = t;
    show(`[${count} lines] ${line.trim()}`);
  };
}

/** Pure: a progress line that changes at most every 5 % (plain renderers print every change). */
export function progressLine(received: number, total: number | undefined, attempt: number): string {
  const mib = (n: number) => `${Math.round(n / 1048576)} MiB`;
  const retry = attempt > 1 ? ` (attempt ${attempt})` : '';
  if (!total) return `${mib(Math.floor(received / (64 * 1048576)) * 64 * 1048576)}${retry}`;
  const pct = Math.floor((received / total) * 20) * 5;
  return `${pct}% of ${mib(total)}${retry}`;
}
