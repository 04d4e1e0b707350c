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

test('a delivery is recorded as attempted before the POST and confirmed after the 2xx', async () => {
  const store = newStore()
  const viewId: ViewId = 'product:100'
  assert.equal((await store.read([viewId])).size, 0)

  const first = decideDelivery(viewId, view(1), (await store.read([viewId])).get(viewId))
  assert.ok(first.action === 'deliver')
  await store.markAttempted([{ viewId, key: first.key, hash: first.hash }])
  const attempted = (await store.read([viewId])).get(viewId)
  assert.deepEqual(attempted, { key: first.key, hash: first.hash, confirmed: false })
  const retry = decideDelivery(viewId, view(1), attempted)
  assert.ok(retry.action === 'deliver' && retry.key === first.key, 'a crash before the 2xx re-sends the key')

  await store.markConfirmed([{ viewId, key: first.key, hash: first.hash }])
  const confirmed = (await store.read([viewId])).get(viewId)
  assert.deepEqual(confirmed, { key: first.key, hash: first.hash, confirmed: true })
  assert.deepEqual(decideDelivery(viewId, view(1), confirmed), { action: 'skip' })
  const next = decideDelivery(viewId, view(2), confirmed)
  assert.ok(next.action === 'deliver' && next.key !== first.key)
})

test('records are read and written in bulk, per view', async () => {
  const store = newStore()
  const attempts = Array.from({ length: 2500 }, (_, i) => ({
    viewId: `customer:${i}` as const,
    key: `customer:${i}:k${i}`,
    hash: `h${i}`,
  }))
  await store.markAttempted(attempts)
  await store.markConfirmed(attempts.filter((_, i) => i % 2 === 0))
  const read = await store.read([...attempts.map((a) => a.viewId), 'product:none'])
  assert.equal(read.size, 2500)
  assert.deepEqual(read.get('customer:2498'), { key: 'customer:2498:k2498', hash: 'h2498', confirmed: true })
  assert.deepEqual(read.get('customer:2499'), { key: 'customer:2499:k2499', hash: 'h2499', confirmed: false })
  assert.equal(read.has('product:none'), false)
})
