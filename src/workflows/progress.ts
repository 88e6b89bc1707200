/** Progress lines for task output: long builds print thousands of lines, so show at most one per interval. */
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
