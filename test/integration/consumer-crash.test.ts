/**
 * A consumer process SIGKILLed while POSTs are in flight (the sink slowed to 500 ms a request), then
 * restarted: nothing is lost — Analytics ends up holding exactly the expected join — and no
 * idempotency key is accepted twice or re-sent with other content. The deliveries the killed
 * process never saw answered are re-sent under the same key and deduplicated by the sink.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type PipelineFixture, pipelineFixture } from '../helpers/consumer.ts'
import { ConsumerProcesses, createSourceTopics } from '../helpers/consumer-process.ts'
import { expectedViews, finalState } from '../helpers/expected-views.ts'
import { type KeyLedger, watchKeys } from '../helpers/key-ledger.ts'
import { assertQuiescent, waitForJoin } from '../helpers/sink-views.ts'
import { customer, product, type SourceChange, sourceWriter } from '../helpers/sources.ts'
import { waitFor } from '../helpers/wait.ts'

const CUSTOMERS = 50
const PRODUCTS = 10

let fixture: PipelineFixture
let children: ConsumerProcesses
let ledger: KeyLedger

before(async () => {
  fixture = await pipelineFixture()
  ledger = watchKeys(fixture.mock.store)
  children = new ConsumerProcesses(fixture.config, fixture.prefix, {
    SINK_CONCURRENCY: '4',
    KAFKA_SESSION_TIMEOUT_MS: '6000',
  })
})
after(async () => {
  await children?.closeAll()
  await fixture?.close()
})

function changes(): SourceChange[] {
  const out: SourceChange[] = []
  for (let p = 0; p < PRODUCTS; p++) out.push({ product: product(`p${p}`, { price: p + 0.5, stock: p * 3 }) })
  for (let c = 0; c < CUSTOMERS; c++) {
    const productIds = [`p${c % PRODUCTS}`, `p${(c * 7) % PRODUCTS}`, `p${(c + 3) % (PRODUCTS + 2)}`]
    out.push({ customer: customer(`c${c}`, productIds) })
  }
  return out
}

test('SIGKILL while POSTs are in flight, then restart: nothing lost, no key accepted twice', async (t) => {
  const started = Date.now()
  await createSourceTopics(fixture.config)
  const produced = changes()
  const expected = expectedViews(finalState(produced))
  const writer = sourceWriter(fixture.config)
  try {
    await writer.write(...produced)
  } finally {
    await writer.close()
  }
  fixture.mock.store.faults.add({ delayMs: 500 })

  const first = children.start()
  await first.ready
  const atKill = await waitFor(
    'some deliveries accepted and more in flight',
    () => {
      const stats = fixture.mock.store.stats()
      const inFlight = stats.received - stats.accepted - stats.replays - stats.rejected
      return stats.accepted >= 8 && inFlight > 0 ? { ...stats, inFlight } : undefined
    },
    60_000,
  )
  assert.equal(await first.stop('SIGKILL'), 'SIGKILL')
  const killedAt = Date.now()
  assert.ok(atKill.accepted < expected.size, `killed before the end (${atKill.accepted} of ${expected.size})`)

  await new Promise((resolve) => setTimeout(resolve, 700))
  const landedAfterKill = fixture.mock.store.stats().accepted - atKill.accepted
  const second = children.start()
  await second.ready
  await waitForJoin(fixture.mock, expected, { timeoutMs: 90_000, context: () => children.describe() })
  const recoveredAt = Date.now()
  const final = await assertQuiescent(fixture.mock, expected, ledger)
  assert.ok(final.replays > 0, 'deliveries unanswered at the kill were re-sent under their keys')
  t.diagnostic(
    `views ${expected.size}; at the kill: accepted ${atKill.accepted}, in flight ${atKill.inFlight}, landed after it ${landedAfterKill}; ` +
      `finally accepted ${final.accepted}, replays ${final.replays}; kill after ${killedAt - started} ms, ` +
      `restart to quiescence ${recoveredAt - killedAt} ms`,
  )
  await second.stop('SIGTERM')
  assert.equal(await second.exited, 'exit 0', `graceful stop:\n${second.tail()}`)
})
