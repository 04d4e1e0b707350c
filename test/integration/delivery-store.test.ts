/** The consumer's delivery records against a real Redis, driven by the pure delivery decision. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { decideDelivery, type ProductView, type ViewId } from '../../src/domain/views.ts'
import { DeliveryStore } from '../../src/state/delivery-store.ts'
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

test('a delivery is claimed before the POST and settled after the 2xx', async () => {
  const store = newStore()
  const viewId: ViewId = 'product:100'
  assert.equal((await store.read([viewId])).size, 0)

  const first = decideDelivery(viewId, view(1), (await store.read([viewId])).get(viewId))
  assert.ok(first.action === 'deliver')
  const claim = { viewId, previousKey: undefined, key: first.key, hash: first.hash, mayLandUntil: 5000 }
  assert.equal((await store.claim([claim], 1)).size, 0)
  const attempted = (await store.read([viewId])).get(viewId)
  assert.deepEqual(attempted, { key: first.key, hash: first.hash, confirmed: false, mayLandUntil: 5000 })
  const retry = decideDelivery(viewId, view(1), attempted)
  assert.ok(retry.action === 'deliver' && retry.key === first.key, 'a crash before the 2xx re-sends the key')

  const record = { key: first.key, hash: first.hash, confirmed: true, seq: 7 }
  assert.equal((await store.settle([{ viewId, record }])).size, 0)
  const confirmed = (await store.read([viewId])).get(viewId)
  assert.deepEqual(confirmed, record)
  assert.deepEqual(decideDelivery(viewId, view(1), confirmed), { action: 'skip' })
  const next = decideDelivery(viewId, view(2), confirmed)
  assert.ok(next.action === 'deliver' && next.key !== first.key)
})

test('of two claims decided from the same record only the first wins', async () => {
  const store = newStore()
  const viewId: ViewId = 'product:100'
  const base = { viewId, previousKey: undefined, mayLandUntil: 5000 }
  assert.deepEqual(await store.claim([{ ...base, key: 'product:100:a', hash: 'ha' }], 1), new Set())
  assert.deepEqual(
    await store.claim([{ ...base, key: 'product:100:b', hash: 'hb' }], 1),
    new Set([viewId]),
    'decided from no record, while one was claimed meanwhile',
  )
  assert.equal((await store.read([viewId])).get(viewId)?.key, 'product:100:a')
  assert.deepEqual(
    await store.claim([{ ...base, previousKey: 'product:100:a', key: 'product:100:a', hash: 'ha' }], 1),
    new Set(),
    'a re-send decided from the claimed record goes',
  )
})

test('a claim loses to an evaluation that read a later view clock, found nothing to send, and says so', async () => {
  const store = newStore()
  const viewId: ViewId = 'product:100'
  const claim = { viewId, previousKey: undefined, key: 'product:100:a', hash: 'ha', mayLandUntil: 5000 }
  // Member B evaluated at clock 8 and skipped the view; member A's evaluation read clock 5.
  await store.evaluated([viewId], 8)
  assert.deepEqual(await store.claim([claim], 5), new Set([viewId]), 'A may send older state than B saw')
  await store.evaluated([viewId], 6)
  assert.deepEqual(
    await store.claim([claim], 8),
    new Set(),
    'the same clock may claim; a lower note is ignored',
  )
  assert.deepEqual(
    await store.claim([{ ...claim, previousKey: 'product:100:a', key: 'product:100:b' }], 7),
    new Set([viewId]),
    'a claim leaves its clock behind too',
  )
})

test('a settlement that finds the record moved on marks it in doubt and keeps it waiting for a late landing', async () => {
  const store = newStore()
  const viewId: ViewId = 'product:100'
  await store.claim(
    [{ viewId, previousKey: undefined, key: 'product:100:a', hash: 'ha', mayLandUntil: 1 }],
    1,
  )
  // Member A's claim expired; member B claimed other content on top of it.
  await store.claim(
    [{ viewId, previousKey: 'product:100:a', key: 'product:100:b', hash: 'hb', mayLandUntil: 100 }],
    1,
  )
  const late = { key: 'product:100:a', hash: 'ha', confirmed: false, mayLandUntil: 900 }
  assert.deepEqual(await store.settle([{ viewId, record: late }]), new Set([viewId]))
  assert.deepEqual((await store.read([viewId])).get(viewId), {
    key: 'product:100:b',
    hash: 'hb',
    confirmed: false,
    mayLandUntil: 900,
    doubt: true,
  })
  // B's own settlement keeps the doubt: its delivery may have landed before A's.
  const settled = { key: 'product:100:b', hash: 'hb', confirmed: true, seq: 3 }
  assert.deepEqual(await store.settle([{ viewId, record: settled }]), new Set())
  assert.deepEqual((await store.read([viewId])).get(viewId), { ...settled, doubt: true })
})

test('records are read and written in bulk, per view', async () => {
  const store = newStore()
  const claims = Array.from({ length: 2500 }, (_, i) => ({
    viewId: `customer:${i}` as const,
    previousKey: undefined,
    key: `customer:${i}:k${i}`,
    hash: `h${i}`,
    mayLandUntil: 10,
  }))
  assert.equal((await store.claim(claims, 1)).size, 0)
  const settled = claims
    .filter((_, i) => i % 2 === 0)
    .map((c) => ({ viewId: c.viewId, record: { key: c.key, hash: c.hash, confirmed: true } }))
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
