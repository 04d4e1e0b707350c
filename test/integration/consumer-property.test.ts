/**
 * Design §4 must 1 as a property: for random sequences of customer and product upserts, deletions and
 * `productIds` changes (6 customer ids, 5 product ids), produced to Kafka one group at a time while
 * consumer processes (`pipeline consumer` children) are stopped with SIGTERM or SIGKILL and restarted,
 * Analytics ends up holding exactly the join of the final source state (test-side reference model),
 * and no idempotency key ever carried two contents (a key re-sent with new content would be dropped by
 * the sink as a replay, leaving a stale view).
 *
 * Each run has fresh topics, consumer group, Redis prefix and mock. A failure prints fast-check's seed
 * and the sequence; `FC_SEED=<seed>` reruns it (shrinking is off: one run takes seconds).
 */
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import fc from 'fast-check'
import { pipelineFixture } from '../helpers/consumer.ts'
import { ConsumerProcesses, createSourceTopics } from '../helpers/consumer-process.ts'
import { expectedViews, finalState } from '../helpers/expected-views.ts'
import { watchKeys } from '../helpers/key-ledger.ts'
import { assertQuiescent, waitForJoin } from '../helpers/sink-views.ts'
import { customer, product, type SourceChange, sourceWriter } from '../helpers/sources.ts'

const customerId = fc.constantFrom('c0', 'c1', 'c2', 'c3', 'c4', 'c5')
const productId = fc.constantFrom('p0', 'p1', 'p2', 'p3', 'p4')

const change: fc.Arbitrary<SourceChange> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .record({
        id: customerId,
        // Repeats allowed: a view lists each product once.
        productIds: fc.array(productId, { maxLength: 4 }),
        name: fc.constantFrom('Ann', 'Bob'),
      })
      .map(({ id, productIds, name }) => ({ customer: customer(id, productIds, { name }) })),
  },
  {
    weight: 3,
    arbitrary: fc
      .record({
        id: productId,
        cents: fc.integer({ min: 0, max: 5000 }),
        stock: fc.integer({ min: 0, max: 20 }),
      })
      .map(({ id, cents, stock }) => ({ product: product(id, { price: cents / 100, stock }) })),
  },
  { weight: 1, arbitrary: customerId.map((id) => ({ deleteCustomer: id })) },
  { weight: 1, arbitrary: productId.map((id) => ({ deleteProduct: id })) },
)

/** A consumer stopped after a change of the sequence was produced, and started again after a pause. */
interface Restart {
  readonly afterChange: number
  readonly victim: number
  readonly signal: 'SIGTERM' | 'SIGKILL'
  readonly pauseMs: number
}

const scenario = (consumers: number) =>
  fc.record({
    changes: fc.array(change, { minLength: 20, maxLength: 60 }),
    // After each change: how long before the next is produced (0: in the same produce call).
    pauses: fc.array(fc.constantFrom(0, 0, 20, 100, 300), { minLength: 60, maxLength: 60 }),
    restarts: fc.array(
      fc.record({
        afterChange: fc.nat({ max: 59 }),
        victim: fc.nat({ max: consumers - 1 }),
        signal: fc.constantFrom<'SIGTERM' | 'SIGKILL'>('SIGTERM', 'SIGKILL'),
        pauseMs: fc.integer({ min: 0, max: 1000 }),
      }),
      { minLength: 1, maxLength: 2 },
    ),
    sinkDelayMs: fc.constantFrom(0, 30),
  })

type Scenario = {
  changes: SourceChange[]
  pauses: number[]
  restarts: Restart[]
  sinkDelayMs: number
}

/** Runs one scenario against `consumers` consumer processes; resolves with a line for the log. */
async function run(consumers: number, s: Scenario): Promise<string> {
  const started = Date.now()
  const fixture = await pipelineFixture()
  // A SIGKILLed member holds its partitions for the session timeout: the broker's minimum keeps runs short.
  const children = new ConsumerProcesses(fixture.config, fixture.prefix, { KAFKA_SESSION_TIMEOUT_MS: '6000' })
  const writer = sourceWriter(fixture.config)
  const ledger = watchKeys(fixture.mock.store)
  const stopped: Array<Promise<string>> = []
  try {
    await createSourceTopics(fixture.config)
    if (s.sinkDelayMs > 0) fixture.mock.store.faults.add({ delayMs: s.sinkDelayMs })
    const slots = Array.from({ length: consumers }, () => children.start())
    // Production starts once every consumer reads, so that restarts hit consumers at work.
    await Promise.all(slots.map((child) => child.ready))
    // The changes go out in groups (one produce call each), separated by the generated pauses.
    let group: SourceChange[] = []
    for (const [index, next] of s.changes.entries()) {
      group.push(next)
      const pause = s.pauses[index] ?? 0
      const restarts = s.restarts.filter((r) => r.afterChange % s.changes.length === index)
      if (pause === 0 && restarts.length === 0 && index < s.changes.length - 1) continue
      await writer.write(...group)
      group = []
      await sleep(pause)
      for (const restart of restarts) {
        const victim = slots[restart.victim]
        if (victim === undefined) continue
        stopped.push(victim.stop(restart.signal))
        await sleep(restart.pauseMs)
        slots[restart.victim] = children.start()
      }
    }
    const expected = expectedViews(finalState(s.changes), {
      lowStockThreshold: fixture.config.LOW_STOCK_THRESHOLD,
    })
    await waitForJoin(fixture.mock, expected, { timeoutMs: 60_000, context: () => children.describe() })
    const quiet = Date.now()
    const stats = await assertQuiescent(fixture.mock, expected, ledger)
    const kills = s.restarts.map((r) => `${r.signal}@${r.afterChange % s.changes.length}`).join(',')
    return (
      `${consumers} consumer(s), ${s.changes.length} changes, restarts ${kills}: ${expected.size} views, ` +
      `accepted ${stats.accepted}, replays ${stats.replays}; quiescent after ${quiet - started} ms`
    )
  } finally {
    await writer.close()
    await children.closeAll()
    await Promise.all(stopped)
    await fixture.close()
  }
}

const seed = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED)

for (const consumers of [1, 3]) {
  test(`${consumers} consumer process(es) with random SIGTERM/SIGKILL restarts: the sink holds exactly the join`, {
    timeout: 200_000,
  }, async (t) => {
    const lines: string[] = []
    await fc.assert(
      fc.asyncProperty(scenario(consumers), async (s) => {
        lines.push(await run(consumers, s))
      }),
      { numRuns: 4, endOnFailure: true, ...(seed === undefined ? {} : { seed }) },
    )
    for (const line of lines) t.diagnostic(line)
  })
}
