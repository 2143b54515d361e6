// The statistics that the benchmarks and the soak suite report, in one place
// that loads nothing else (bench/scenario.ts, which used to hold them, loads
// every implementation it measures).

/** The median of `values`; of an even count, the mean of the middle two. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2
    ? sorted[middle]
    : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** The smallest of `values` that at least a share `p` (0 to 1) are under or at. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}
