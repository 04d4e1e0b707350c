/**
 * The consumer's backlog as gauges, refreshed on a timer: the lag of each stage's group per topic and
 * partition (`pipeline_consumer_lag`) and the depth of the dead letter topic (`pipeline_dlq_depth`).
 * Both come from the broker (and the DLQ replay ledger in Redis), not from this instance's own
 * progress, so every consumer instance reports the same numbers: dashboards and alerts take the max
 * across instances, never the sum.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { type Admin, ListOffsetTimestamps } from '@platformatic/kafka'
import { describeError } from '../../errors.ts'
import { consumerLag, offsetsAt } from '../../kafka/admin.ts'
import { kafkaTimeouts, withDeadline } from '../../kafka/connection.ts'
import { DLQ_PARTITIONS } from '../../kafka/topics.ts'
import type { Logger } from '../../observability/logger.ts'
import type { ConsumerMetrics } from '../../observability/metrics.ts'

/** How often the gauges are refreshed by default: about one Prometheus scrape interval. */
export const LAG_REFRESH_MS = 5000

/** One consumer group and the topics it reads. */
export interface MonitoredGroup {
  readonly groupId: string
  readonly topics: readonly string[]
}

/**
 * How many entries of `topic` at or after `startOffset` were replayed: the depth leaves them out.
 * `startOffset` is the earliest retained offset (older marks belong to entries Kafka dropped).
 */
export type ReplayedCount = (topic: string, startOffset: bigint) => Promise<number>

/** Options of {@link startLagMonitor}. */
export interface LagMonitorOptions {
  readonly admin: Admin
  readonly groups: readonly MonitoredGroup[]
  readonly dlqTopic: string
  /** Replayed DLQ entries (the replay ledger); without it the depth is every retained entry. */
  readonly replayed?: ReplayedCount
  readonly metrics: Pick<ConsumerMetrics, 'lag' | 'dlqDepth'>
  readonly logger: Logger
  /** Default {@link LAG_REFRESH_MS}. */
  readonly intervalMs?: number
}

/** A running monitor. */
export interface LagMonitor {
  /** Refreshes the gauges now; resolves false (after logging) when the broker or Redis failed. */
  refresh(): Promise<boolean>
  /** Stops the timer; resolves once a refresh in progress ended. */
  stop(): Promise<void>
}

/**
 * Starts refreshing at once and then every `intervalMs`. A failed refresh keeps the last values
 * (an outage of the broker is no reason to report an empty backlog) and is logged once per streak.
 */
export function startLagMonitor(options: LagMonitorOptions): LagMonitor {
  const stopping = new AbortController()
  let failing = false
  const refresh = async (): Promise<boolean> => {
    try {
      await refreshOnce(options)
      if (failing) options.logger.info('consumer lag: refreshed again')
      failing = false
      return true
    } catch (error) {
      if (!failing)
        options.logger.warn(
          { err: { message: describeError(error) }, topic: options.dlqTopic },
          `consumer lag and DLQ depth not refreshed (last values kept): ${describeError(error)}`,
        )
      failing = true
      return false
    }
  }
  const running = (async () => {
    while (!stopping.signal.aborted) {
      await refresh()
      await sleep(options.intervalMs ?? LAG_REFRESH_MS, undefined, { signal: stopping.signal }).catch(
        () => undefined,
      )
    }
  })()
  return {
    refresh,
    async stop() {
      stopping.abort()
      await running
    },
  }
}

async function refreshOnce(options: LagMonitorOptions): Promise<void> {
  const dlq = new Map([[options.dlqTopic, DLQ_PARTITIONS]])
  const { LATEST, EARLIEST } = ListOffsetTimestamps
  const [groups, ends, starts] = await Promise.all([
    Promise.all(
      options.groups.map(async (group) => ({
        group,
        lags: await consumerLag(options.admin, group.groupId, group.topics),
      })),
    ),
    withDeadline(offsetsAt(options.admin, dlq, LATEST), kafkaTimeouts.operationMs, 'DLQ end offsets'),
    withDeadline(offsetsAt(options.admin, dlq, EARLIEST), kafkaTimeouts.operationMs, 'DLQ start offsets'),
  ])
  let depth = 0
  for (const [key, end] of ends) {
    const start = starts.get(key) ?? 0n
    const replayed = (await options.replayed?.(options.dlqTopic, start)) ?? 0
    depth += Math.max(0, Number(end - start) - replayed)
  }
  // Set in one go after every read succeeded: a scrape never sees a half-refreshed set, and a partition
  // or topic that went away leaves no stale series behind.
  options.metrics.lag.reset()
  for (const { group, lags } of groups) {
    for (const lag of lags)
      options.metrics.lag.set(
        { group: group.groupId, topic: lag.topic, partition: String(lag.partition) },
        lag.lag,
      )
  }
  options.metrics.dlqDepth.set(depth)
}
