/** Human-readable byte count: 1536 → "1.5 KB". */
export function formatBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

export function formatAccuracy(a: number): string {
  return Number.isNaN(a) ? '  n/a ' : a.toFixed(4);
}
