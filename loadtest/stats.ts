/**
 * The summaries every figure in a report is made of: the median of the runs, with the
 * smallest and largest run beside it (noisy machine: never a single run, never a mean).
 */

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** How many runs the figure summarizes. */
  n: number;
}

export function summarize(values: readonly number[]): Spread | undefined {
  const finite = values.filter((value) => Number.isFinite(value));
  if (finite.length === 0) return undefined;
  const sorted = [...finite].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return { median, min: sorted[0]!, max: sorted.at(-1)!, n: sorted.length };
}

/** Pairwise ratios of two series measured round by round (a[i] / b[i]). */
export function pairwiseRatios(a: readonly number[], b: readonly number[]): number[] {
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (b[i]! > 0 && Number.isFinite(a[i]!)) ratios.push(a[i]! / b[i]!);
  }
  return ratios;
}
