/**
 * A latency histogram with logarithmic buckets: eight per doubling from 10 µs to ten
 * minutes, so any percentile read from it is within 9 % of the true value, in a fixed
 * 209 counters whatever the traffic. Buckets of several histograms add up, which is how
 * the recorder turns per-second histograms into a percentile over a window.
 */
const SMALLEST_MS = 0.01;
const BUCKETS_PER_DOUBLING = 8;
export const BUCKET_COUNT = 209;

export function bucketOf(ms: number): number {
  if (!(ms > SMALLEST_MS)) return 0;
  const index = Math.ceil(Math.log2(ms / SMALLEST_MS) * BUCKETS_PER_DOUBLING);
  return Math.min(index, BUCKET_COUNT - 1);
}

/** The largest latency counted in bucket `index`. */
export function upperBoundOf(index: number): number {
  return SMALLEST_MS * 2 ** (index / BUCKETS_PER_DOUBLING);
}

export function newHistogram(): Uint32Array {
  return new Uint32Array(BUCKET_COUNT);
}

/**
 * The latencies (ms, rounded to 0.1 ms) under which `quantiles` of the counted requests
 * fell, or null for each when nothing was counted.
 */
export function quantilesOf(histogram: Uint32Array, quantiles: readonly number[]): (number | null)[] {
  let total = 0;
  for (const count of histogram) total += count;
  if (total === 0) return quantiles.map(() => null);
  return quantiles.map((quantile) => {
    const rank = Math.max(1, Math.ceil(quantile * total));
    let seen = 0;
    for (let index = 0; index < histogram.length; index++) {
      seen += histogram[index]!;
      if (seen >= rank) return Math.round(upperBoundOf(index) * 10) / 10;
    }
    return Math.round(upperBoundOf(histogram.length - 1) * 10) / 10;
  });
}
