/** Reading prom-client metrics in assertions. */

/** A prom-client metric as far as a reading goes (Counter, Gauge, Histogram). */
export interface ReadableMetric {
  get(): Promise<{ values: ReadonlyArray<{ value: number; labels: object }> }>
}

/**
 * The sum of the series of `metric` whose labels include `labels` (0 when none has been touched
 * yet, which is what a counter that never moved means).
 */
export async function metricValue(
  metric: ReadableMetric,
  labels: Record<string, string> = {},
): Promise<number> {
  const { values } = await metric.get()
  let sum = 0
  for (const series of values) {
    const own = series.labels as Record<string, unknown>
    if (Object.entries(labels).every(([name, value]) => own[name] === value)) sum += series.value
  }
  return sum
}
