/**
 * The polling loop of one source. Each source has its own loop, so a hung CRM never delays the
 * Inventory. A source never overlaps itself: a cycle that outlasts the interval makes the loop skip
 * (and count) the ticks it missed. Replicas share one schedule through Redis and a lease, so only
 * the lease holder polls, and a standby takes over when the holder stops renewing it.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { describeError } from '../../errors.ts'
import type { Logger } from '../../observability/logger.ts'
import type { ProducerMetrics } from '../../observability/metrics.ts'
import type { SourceSpec } from '../../sources/catalog.ts'
import { acquireLease, releaseLease } from '../../state/lease.ts'
import type { Redis } from '../../state/redis.ts'
import type { SourceState } from '../../state/source-state.ts'
import type { CycleSummary } from './cycle.ts'

/** Options of {@link startSourceLoop}. */
export interface SourceLoopOptions {
  readonly source: SourceSpec
  readonly redis: Redis
  readonly state: SourceState
  readonly metrics: ProducerMetrics
  readonly logger: Logger
  readonly intervalMs: number
  readonly leaseTtlMs: number
  /** Identifies this replica as a lease holder. */
  readonly owner: string
  /** Key prefix of the lease (separates deployments and tests). */
  readonly prefix: string
  readonly runCycle: (source: SourceSpec, signal: AbortSignal) => Promise<CycleSummary>
}

/** A running loop. */
export interface SourceLoop {
  /** Resolves after the first cycle this replica ran (or failed), for readiness and tests. */
  readonly firstCycle: Promise<void>
  /** Stops polling, aborts an in-flight fetch, releases the lease. */
  stop(): Promise<void>
}

/** Starts the loop of one source. */
export function startSourceLoop(options: SourceLoopOptions): SourceLoop {
  const { source, metrics, logger } = options
  const labels = { source: source.name }
  const leaseKey = `${options.prefix}:producer:${source.name}:lease`
  const stopping = new AbortController()
  let cycleAbort: AbortController | undefined
  let firstDone: () => void = () => undefined
  const firstCycle = new Promise<void>((resolve) => {
    firstDone = resolve
  })
  let failures = 0
  let ranOnce = false
  const tickMs = Math.max(50, Math.min(options.intervalMs, options.leaseTtlMs / 3, 1000))

  const holdLease = async (): Promise<boolean> => {
    const held = await acquireLease(options.redis, leaseKey, options.owner, options.leaseTtlMs)
    metrics.leaseHeld.set(labels, held ? 1 : 0)
    return held
  }

  const cycle = async () => {
    const started = Date.now()
    await options.state.setLastCycleAt(source.name, started)
    cycleAbort = new AbortController()
    // Keep the lease while the cycle runs; losing it (Redis outage, long pause) stops publishing.
    const heartbeat = setInterval(() => {
      holdLease().then(
        (held) => {
          if (!held) cycleAbort?.abort()
        },
        () => undefined,
      )
    }, options.leaseTtlMs / 3)
    const end = metrics.pollDuration.startTimer(labels)
    try {
      const summary = await options.runCycle(source, cycleAbort.signal)
      metrics.polls.inc({ ...labels, outcome: summary.outcome })
      metrics.lastSuccess.set(labels, Date.now() / 1000)
      failures = 0
    } catch (error) {
      failures++
      metrics.polls.inc({ ...labels, outcome: 'failed' })
      logger.error(
        { source: source.name, consecutiveFailures: failures, code: (error as { code?: string }).code },
        `${source.name}: cycle failed, nothing more published this cycle: ${describeError(error)}`,
      )
    } finally {
      clearInterval(heartbeat)
      end()
      metrics.consecutiveFailures.set(labels, failures)
      cycleAbort = undefined
    }
    const missed = Math.floor((Date.now() - started) / options.intervalMs)
    if (missed > 0) {
      metrics.polls.inc({ ...labels, outcome: 'skipped_overlap' }, missed)
      logger.warn(
        { source: source.name, missed },
        `${source.name}: cycle outlasted the interval; skipped ${missed} tick(s)`,
      )
    }
  }

  const loop = async () => {
    while (!stopping.signal.aborted) {
      try {
        if (await holdLease()) {
          const last = await options.state.lastCycleAt(source.name)
          // The first cycle after this replica takes the lease runs at once (start-up poll).
          const due = !ranOnce || last === undefined || Date.now() - last >= options.intervalMs
          if (due) {
            await cycle()
            if (!ranOnce) firstDone()
            ranOnce = true
          }
        }
      } catch (error) {
        logger.error({ source: source.name }, `${source.name}: scheduling failed: ${describeError(error)}`)
      }
      await sleep(tickMs, undefined, { signal: stopping.signal }).catch(() => undefined)
    }
  }
  const running = loop()

  return {
    firstCycle,
    async stop() {
      stopping.abort()
      cycleAbort?.abort()
      await running
      metrics.leaseHeld.set(labels, 0)
      await releaseLease(options.redis, leaseKey, options.owner).catch(() => undefined)
    },
  }
}
