/** Summary of a sample: count, median, p95, min, max, and spread (p95 - min). */
export interface Summary {
  n: number;
  median: number;
  p95: number;
  min: number;
  max: number;
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] ?? Number.NaN;
  const b = sorted[hi] ?? Number.NaN;
  return a + (b - a) * (pos - lo);
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((x, y) => x - y);
  const round = (v: number): number => Math.round(v * 100) / 100;
  return {
    n: sorted.length,
    median: round(quantile(sorted, 0.5)),
    p95: round(quantile(sorted, 0.95)),
    min: round(sorted[0] ?? Number.NaN),
    max: round(sorted[sorted.length - 1] ?? Number.NaN),
  };
}

export function formatSummary(s: Summary, unit = "ms"): string {
  return `median ${s.median} ${unit}, p95 ${s.p95} ${unit} (min ${s.min}, max ${s.max}, n=${s.n})`;
}
