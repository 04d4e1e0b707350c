/** The consumer's delivery records against a real Redis, driven by the pure delivery decision. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { decideDelivery, type ProductView, type ViewId } from '../../src/domain/views.ts'
import { claimText, DeliveryStore } from '../../src/state/delivery-store.ts'
import { useTestRedis } from '../helpers/redis.ts'

const testRedis = useTestRedis()
const newStore = () => new DeliveryStore(testRedis.redis, testRedis.newPrefix('delivery-store'))

const view = (customerCount: number): ProductView => ({
  type: 'product',
  id: '100',
  product: { id: '100', sku: 'S', name: 'P', price: 1, stock: 1, updatedAt: '2024-05-01T09:00:00Z' },
  customerCount,
  customerIds: [],
  customerIdsTruncated: customerCount > 0,
})

/** The stored text of the view's record, what a claim decided from it compares against. */
const textOf = async (store: DeliveryStore, viewId: ViewId) =>
  (await store.readRecorded([viewId])).raw.get(viewId)

test('a delivery is claimed before the POST and settled after the 2xx', async () => {
  const store = newStore()
  const viewId: ViewId = 'product:100'
  assert.equal((await store.read([viewId])).size, 0)

  const first = decideDelivery(viewId, view(1), (await store.read([viewId])).get(viewId))
  assert.ok(first.action === 'deliver')
  const claim = { viewId, previous: undefined, key: first.key, hash: first.hash, mayLandUntil: 5000 }
  assert.equal((await store.claim([claim], 1)).size, 0)
  const attempted = (await store.read([viewId])).get(viewId)
  assert.deepEqual(attempted, { key: first.key, hash: first.hash, confirmed: false, mayLandUntil: 5000 })
  const retry = decideDelivery(viewId, view(1), attempted)
  assert.ok(retry.action === 'deliver' && retry.key === first.key, 'a crash before the 2xx re-sends the key')

  const record = { key: first.key, hash: first.hash, confirmed: true, seq: 7 }
  assert.equal((await store.settle([{ viewId, claimed: claimText(claim), record }])).size, 0)
  const confirmed = (await store.read([viewId])).get(viewId)
  assert.deepEqual(confirmed, record)
  assert.deepEqual(decideDelivery(viewId, view(1), confirmed), { action: 'skip' })
  const next = decideDelivery(viewId, view(2), confirmed)
  assert.ok(next.action === 'deliver' && next.key !== first.key)
})

test('of two claims decided from the same record only the first wins, a re-send included', async () => {
  const store = newStore()
  const viewId: ViewId = 'product:100'
  const base = { viewId, previous: undefined, mayLandUntil: 5000 }
  assert.deepEqual(await store.claim([{ ...base, key: 'product:100:a', hash: 'ha' }], 1), new Set())
  assert.deepEqual(
    await store.claim([{ ...base, key: 'product:100:b', hash: 'hb' }], 1),
    new Set([viewId]),
    'decided from no record, while one was claimed meanwhile',
  )
  const read = await textOf(store, viewId)
  const resend = { ...base, previous: read, key: 'product:100:a', hash: 'ha', mayLandUntil: 9000 }
  assert.deepEqual(
    await store.claim([resend], 2),
    new Set(),
    'a re-send decided from the claimed record goes',
  )
  // Another member decided other content from the same record before the re-send renewed it.
  assert.deepEqual(
    await store.claim([{ ...resend, key: 'product:100:c', hash: 'hc' }], 3),
    new Set([viewId]),
    'two contents are never in the air together',
  )
})

test('a claim loses to an evaluation that read a later view clock, found nothing to send, and says so', async () => {
  const store = newStore()
  const viewId: ViewId = 'product:100'
  const claim = { viewId, previous: undefined, key: 'product:100:a', hash: 'ha', mayLandUntil: 5000 }
  // Member B evaluated at clock 8 and skipped the view; member A's evaluation read clock 5.
  assert.deepEqual(await store.evaluated([[viewId, undefined]], 8), new Set())
  assert.deepEqual(await store.claim([claim], 5), new Set([viewId]), 'A may send older state than B saw')
  await store.evaluated([[viewId, undefined]], 6)
  assert.deepEqual(
    await store.claim([claim], 8),
    new Set(),
    'the same clock may claim; a lower note is ignored',
  )
  const claimed = await textOf(store, viewId)
  assert.deepEqual(
    await store.claim([{ ...claim, previous: claimed, key: 'product:100:b' }], 7),
    new Set([viewId]),
    'a claim leaves its clock behind too',
  )
})

test('a skip whose record was claimed after it was read does not stand', async () => {
  const store = newStore()
  const viewId: ViewId = 'product:100'
  // Member B read no record and found nothing to send; member A claimed the view in between.
  await store.claim([{ viewId, previous: undefined, key: 'product:100:a', hash: 'ha', mayLandUntil: 5 }], 3)
  assert.deepEqual(await store.evaluated([[viewId, undefined]], 9), new Set([viewId]))
  assert.deepEqual(await store.evaluated([[viewId, await textOf(store, viewId)]], 9), new Set())
})

test('a settlement that finds the record moved on marks it in doubt and keeps it waiting for a late landing', async () => {
  const store = newStore()
  const viewId: ViewId = 'product:100'
  const claimA = { viewId, previous: undefined, key: 'product:100:a', hash: 'ha', mayLandUntil: 1 }
  await store.claim([claimA], 1)
  // Member A's claim expired; member B claimed other content on top of it.
  const claimB = {
    ...claimA,
    previous: claimText(claimA),
    key: 'product:100:b',
    hash: 'hb',
    mayLandUntil: 100,
  }
  await store.claim([claimB], 1)
  const late = { key: 'product:100:a', hash: 'ha', confirmed: false, mayLandUntil: 900 }
  assert.deepEqual(
    await store.settle([{ viewId, claimed: claimText(claimA), record: late }]),
    new Set([viewId]),
  )
  assert.deepEqual((await store.read([viewId])).get(viewId), {
    key: 'product:100:b',
    hash: 'hb',
    confirmed: false,
    mayLandUntil: 900,
    doubt: true,
  })
  // B's own settlement keeps the doubt and A's window: its delivery may have landed before A's,
  // and A's may land until 900.
  const settled = { key: 'product:100:b', hash: 'hb', confirmed: true, seq: 3 }
  assert.deepEqual(await store.settle([{ viewId, claimed: claimText(claimB), record: settled }]), new Set())
  assert.deepEqual((await store.read([viewId])).get(viewId), { ...settled, doubt: true, mayLandUntil: 900 })
})

test("a settlement without a 2xx keeps the longer window of another member's re-send of the same key", async () => {
  const store = newStore()
  const viewId: ViewId = 'product:100'
  const claimA = { viewId, previous: undefined, key: 'product:100:a', hash: 'ha', mayLandUntil: 50 }
  await store.claim([claimA], 1)
  // Member B re-sends the same key (same content, outcome unknown), renewing the window to 5000.
  const claimB = { ...claimA, previous: claimText(claimA), mayLandUntil: 5000 }
  await store.claim([claimB], 1)
  const givenUp = { key: 'product:100:a', hash: 'ha', confirmed: false, mayLandUntil: 60 }
  assert.deepEqual(await store.settle([{ viewId, claimed: claimText(claimA), record: givenUp }]), new Set())
  assert.equal((await store.read([viewId])).get(viewId)?.mayLandUntil, 5000, "B's copy may still land")
  // After a 2xx every copy of the key is a replay: no window is needed any more.
  const delivered = { key: 'product:100:a', hash: 'ha', confirmed: true, seq: 4 }
  assert.deepEqual(await store.settle([{ viewId, claimed: claimText(claimA), record: delivered }]), new Set())
  assert.deepEqual((await store.read([viewId])).get(viewId), delivered)
})

test('a replay resets a record only while it is the one read', async () => {
  const store = newStore()
  const viewId: ViewId = 'product:100'
  await store.claim([{ viewId, previous: undefined, key: 'product:100:a', hash: 'ha', mayLandUntil: 1 }], 1)
  const read = await textOf(store, viewId)
  const reset = { key: 'product:100:a', hash: 'marker', confirmed: true }
  assert.equal(await store.replace(viewId, read, reset), true)
  assert.equal(await store.replace(viewId, read, { ...reset, hash: 'other' }), false, 'moved on since')
  assert.deepEqual((await store.read([viewId])).get(viewId), reset)
})

test('records are read and written in bulk, per view', async () => {
  const store = newStore()
  const claims = Array.from({ length: 2500 }, (_, i) => ({
    viewId: `customer:${i}` as const,
    previous: undefined,
    key: `customer:${i}:k${i}`,
    hash: `h${i}`,
    mayLandUntil: 10,
  }))
  assert.equal((await store.claim(claims, 1)).size, 0)
  const settled = claims
    .filter((_, i) => i % 2 === 0)
    .map((c) => ({
      viewId: c.viewId,
      claimed: claimText(c),
      record: { key: c.key, hash: c.hash, confirmed: true },
    }))
  assert.equal((await store.settle(settled)).size, 0)
  const read = await store.read([...claims.map((a) => a.viewId), 'product:none'])
  assert.equal(read.size, 2500)
  assert.deepEqual(read.get('customer:2498'), { key: 'customer:2498:k2498', hash: 'h2498', confirmed: true })
  assert.deepEqual(read.get('customer:2499'), {
    key: 'customer:2499:k2499',
    hash: 'h2499',
    confirmed: false,
    mayLandUntil: 10,
  })
  assert.equal(read.has('product:none'), false)
})
