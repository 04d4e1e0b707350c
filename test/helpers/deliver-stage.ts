/** Stage 2 (the deliver stage) driven directly, against a real Redis and a real Analytics mock. */

import { after, before } from 'node:test'

import { createLogger } from '../../src/observability/logger.ts'
import type { ConsumerMetrics } from '../../src/observability/metrics.ts'
import { ViewCoverage } from '../../src/services/consumer/coverage.ts'
import type { DeliverContext } from '../../src/services/consumer/deliver-stage.ts'
import { type MockAnalytics, startMockAnalytics } from '../../src/services/mock-analytics/server.ts'
import { AnalyticsSink } from '../../src/sinks/delivery.ts'
import { DeliveryStore } from '../../src/state/delivery-store.ts'
import { EntityStore } from '../../src/state/entity-store.ts'
import type { Redis } from '../../src/state/redis.ts'
import { RetrySchedule } from '../../src/state/retry-schedule.ts'
import { ViewClock } from '../../src/state/view-clock.ts'

/** A sink to `mockUrl` that fails fast: short backoffs, and `timeoutMs` per request. */
export function testSink(mockUrl: string, timeoutMs: number, maxAttempts: number): AnalyticsSink {
  return new AnalyticsSink({
    url: `${mockUrl}/analytics/data`,
    timeoutMs,
    concurrency: 8,
    retry: { maxAttempts, baseDelayMs: 10, maxDelayMs: 50 },
    breaker: { failureThreshold: 100, halfOpenAfterMs: 500 },
  })
}

/** A real Analytics mock and a {@link testSink} to it, for the tests of the file that calls this. */
export interface TestAnalytics {
  readonly mock: MockAnalytics
  readonly sink: AnalyticsSink
}

/**
 * Starts an Analytics mock on a free port and a {@link testSink} to it before the file's tests, and
 * closes both after them; use the returned object's members inside tests.
 */
export function useMockAnalytics(timeoutMs: number, maxAttempts: number): TestAnalytics {
  let mock: MockAnalytics | undefined
  let sink: AnalyticsSink | undefined
  before(async () => {
    mock = await startMockAnalytics({ port: 0 })
    sink = testSink(mock.url, timeoutMs, maxAttempts)
  })
  after(async () => {
    await sink?.close()
    await mock?.close()
  })
  const started = <T>(part: T | undefined): T => {
    if (part === undefined) throw new Error('the Analytics mock starts in before(): use it inside tests')
    return part
  }
  return {
    get mock() {
      return started(mock)
    },
    get sink() {
      return started(sink)
    },
  }
}

/**
 * The context of one stage-2 member of the deployment under `prefix`: its stores share the Redis
 * state, its coverage memory is its own. Silent logs, short retry rounds, `overrides` last.
 */
export function deliverContext(
  deps: {
    readonly redis: Redis
    readonly prefix: string
    readonly sink: AnalyticsSink
    readonly metrics: ConsumerMetrics
  },
  overrides: Partial<DeliverContext> = {},
): DeliverContext {
  const { redis, prefix } = deps
  return {
    entities: new EntityStore(redis, prefix),
    deliveries: new DeliveryStore(redis, prefix),
    retries: new RetrySchedule(redis, prefix),
    clock: new ViewClock(redis, prefix),
    coverage: new ViewCoverage(),
    sink: deps.sink,
    dlq: { write: async () => undefined },
    metrics: deps.metrics,
    logger: createLogger({ service: 'test', level: 'silent' }),
    viewOptions: { lowStockThreshold: 10, customerIdsCap: 100 },
    retryRounds: 1,
    retryDelayMs: 1000,
    inFlightMs: 10_000,
    lateMs: 1000,
    ...overrides,
  }
}

/** `target` with one method replaced (the others bound to it, private members and all). */
export function withMethod<T extends object>(target: T, name: keyof T, method: unknown): T {
  return new Proxy(target, {
    get(inner, property) {
      if (property === name) return method
      const value: unknown = Reflect.get(inner, property, inner)
      return typeof value === 'function' ? value.bind(inner) : value
    },
  })
}
