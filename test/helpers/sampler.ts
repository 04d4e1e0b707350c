/** Watching a metric over time: what a gauge went through between two moments of a test. */
import type { ReadableMetric } from './metrics.ts'
import { metricValue } from './metrics.ts'

/** The values a metric took while it was sampled. */
export interface MetricSampler {
  /** Every distinct value seen so far. */
  seen(): Set<number>
  /** The most recent sample. */
  last(): number | undefined
  /** Stops sampling; resolves once no sample is in flight. */
  stop(): Promise<void>
}

/** Reads `metric` (summed over its series) every `intervalMs` until stopped. */
export function sampleMetric(metric: ReadableMetric, intervalMs = 20): MetricSampler {
  const seen = new Set<number>()
  let last: number | undefined
  let inFlight: Promise<void> = Promise.resolve()
  const sample = (): void => {
    inFlight = metricValue(metric).then((value) => {
      seen.add(value)
      last = value
    })
  }
  sample()
  const timer = setInterval(sample, intervalMs)
  return {
    seen: () => seen,
    last: () => last,
    async stop() {
      clearInterval(timer)
      await inFlight
      sample()
      await inFlight
    },
  }
}
