// The statistics that the benchmarks and the soak suite report. A module of
// their own, because bench/scenario.ts loads every implementation it
// measures.

/** The median of `values`; of an even count, the mean of the middle two. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2
    ? sorted[middle]
    : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * The `p` quantile of `values` (`p` from 0 to 1) by nearest rank: the
 * smallest value that at least a share `p` of them do not exceed.
 */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}
