/** The consumer's entity state, reverse index and applied snapshots against a real Redis. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { encodePosition, type SourcePosition } from '../../src/domain/fanout.ts'
import { computeView, type ViewId } from '../../src/domain/views.ts'
import { AppliedStore } from '../../src/state/applied-store.ts'
import { EntityStore } from '../../src/state/entity-store.ts'
import { customerRecord, productRecord, stored } from '../helpers/entities.ts'
import { useTestRedis } from '../helpers/redis.ts'

const testRedis = useTestRedis()
const newPrefix = () => testRedis.newPrefix('entity-store')

const customer = (id: string, productIds: string[]) => stored(customerRecord(id, productIds))
const product = (id: string, price = 10, stock = 5) => stored(productRecord(id, price, stock))

async function members(store: EntityStore, productId: string): Promise<string[]> {
  const out: string[] = []
  for await (const page of store.customersOf(productId)) out.push(...page)
  return out
}

test('customer upserts and deletions keep the reverse index exactly the customers’ productIds', async () => {
  const prefix = newPrefix()
  const store = new EntityStore(testRedis.redis, prefix)
  await store.upsertCustomer(customer('1', ['100', '200', '100']))
  await store.upsertCustomer(customer('2', ['200']))
  assert.deepEqual(await members(store, '100'), ['1'])
  assert.deepEqual(await members(store, '200'), ['1', '2'])

  await store.upsertCustomer(customer('1', ['200', '300']))
  assert.deepEqual(await members(store, '100'), [])
  assert.equal(
    await testRedis.redis.exists(`${prefix}:consumer:customers-of:100`),
    0,
    'an emptied index is gone',
  )
  assert.deepEqual(await members(store, '300'), ['1'])
  assert.deepEqual((await store.getCustomers(['1'])).get('1'), customer('1', ['200', '300']))

  await store.deleteCustomer('1')
  assert.deepEqual(await members(store, '200'), ['2'])
  assert.deepEqual(await members(store, '300'), [])
  assert.equal((await store.getCustomers(['1', '2'])).has('1'), false)
  await store.deleteCustomer('never-seen')
  assert.equal(await store.countCustomersOf('200'), 1)
})

test('property: after any sequence of customer writes, the index is the inverse of the stored customers', async () => {
  const ids = ['1', '2', '3', '4']
  const productIds = fc.array(fc.constantFrom('p1', 'p2', 'p3', 'p4', 'p5'), { maxLength: 5 })
  const op = fc.oneof(
    fc.record({ id: fc.constantFrom(...ids), productIds }),
    fc.record({ id: fc.constantFrom(...ids), productIds: fc.constant(null) }),
  )
  await fc.assert(
    fc.asyncProperty(fc.array(op, { maxLength: 15 }), async (ops) => {
      const store = new EntityStore(testRedis.redis, newPrefix())
      // All in one tick: pipelined, and executed by Redis in issue order.
      await Promise.all(
        ops.map(({ id, productIds }) =>
          productIds === null ? store.deleteCustomer(id) : store.upsertCustomer(customer(id, productIds)),
        ),
      )
      const customers = await store.getCustomers(ids)
      for (const productId of ['p1', 'p2', 'p3', 'p4', 'p5']) {
        const expected = ids.filter((id) => customers.get(id)?.data.productIds.includes(productId))
        assert.deepEqual(await members(store, productId), expected, productId)
        assert.equal(await store.countCustomersOf(productId), expected.length)
      }
    }),
    { numRuns: 25 },
  )
})

test('products are stored and deleted; deleting one keeps the customers that list it', async () => {
  const store = new EntityStore(testRedis.redis, newPrefix())
  await store.upsertProduct(product('100'))
  await store.upsertProduct(product('200', 2.5, 40))
  await store.upsertCustomer(customer('1', ['100']))
  assert.deepEqual([...(await store.getProducts(['100', '200', '300'])).keys()].sort(), ['100', '200'])
  await store.deleteProduct('100')
  assert.deepEqual([...(await store.getProducts(['100', '200'])).keys()], ['200'])
  assert.deepEqual(await members(store, '100'), ['1'])
})

test('customersOf walks the index in byte order by pages and skips no member when others leave meanwhile', async () => {
  const store = new EntityStore(testRedis.redis, newPrefix())
  const ids = Array.from({ length: 25 }, (_, i) => `c${i}`)
  await Promise.all(ids.map((id) => store.upsertCustomer(customer(id, ['p']))))
  const sorted = [...ids].sort()
  const seen: string[] = []
  let pages = 0
  for await (const page of store.customersOf('p', 10)) {
    pages += 1
    seen.push(...page)
    // Those already seen leave: a walk by position would now skip as many unseen members.
    if (pages === 1) await Promise.all(page.map((id) => store.deleteCustomer(id)))
  }
  assert.equal(pages, 3)
  assert.deepEqual(seen, sorted)
})

/** Where a message of partition 0 of `topic` sits; its timestamp grows with the offset unless given. */
const at = (offset: number, timestamp = 1000 + offset, topic = 'customers'): SourcePosition => ({
  topic,
  partition: 0,
  offset: String(offset),
  timestamp: String(timestamp),
})

test('applied snapshots: written only while the stored position is the batch’s own; deletion forgets; last entry wins', async () => {
  const prefix = newPrefix()
  const applied = new AppliedStore(testRedis.redis, prefix)
  const store = new EntityStore(testRedis.redis, prefix)
  assert.equal((await applied.read('customer', ['1'])).size, 0)
  await store.writeCustomers([
    { id: '1', stored: customer('1', ['200']), at: at(5) },
    { id: '2', stored: customer('2', []), at: at(6) },
  ])
  await applied.writeIfCurrent('customer', [
    ['1', { hash: 'h1', productIds: ['100'] }, at(5)],
    ['2', { hash: 'h2', productIds: [] }, at(6)],
    ['1', { hash: 'h1b', productIds: ['200'] }, at(5)],
  ])
  assert.deepEqual(Object.fromEntries(await applied.read('customer', ['1', '2', '3'])), {
    '1': { hash: 'h1b', productIds: ['200'] },
    '2': { hash: 'h2', productIds: [] },
  })

  // Another member applied a later message of customer 2 meanwhile (a rebalance): the stale
  // batch's snapshot is refused, the later one is written.
  await store.writeCustomers([{ id: '2', stored: null, at: at(9) }])
  await applied.writeIfCurrent('customer', [['2', { hash: 'stale', productIds: [] }, at(6)]])
  assert.deepEqual((await applied.read('customer', ['2'])).get('2'), { hash: 'h2', productIds: [] })
  await applied.writeIfCurrent('customer', [['2', undefined, at(9)]])
  assert.deepEqual([...(await applied.read('customer', ['1', '2', '3'])).keys()], ['1'])

  const many = Array.from({ length: 2500 }, (_, i) => `m${i}`)
  await store.writeProducts(many.map((id) => ({ id, stored: product(id), at: at(1, 1, 'products') })))
  await applied.writeIfCurrent(
    'product',
    many.map((id, i) => [id, { hash: `h${i}` }, at(1, 1, 'products')] as const),
  )
  const back = await applied.read('product', many)
  assert.equal(back.size, 2500)
  assert.deepEqual(back.get('m2499'), { hash: 'h2499' })
})

test('a write older than the stored position is skipped and reported, index untouched; the same position rewrites', async () => {
  const prefix = newPrefix()
  const store = new EntityStore(testRedis.redis, prefix)
  assert.deepEqual(await store.writeCustomers([{ id: 'c', stored: customer('c', ['p2']), at: at(10) }]), [])
  assert.deepEqual(
    await store.writeCustomers([
      { id: 'c', stored: customer('c', ['p1']), at: at(7) },
      { id: 'd', stored: customer('d', ['p1']), at: at(8) },
    ]),
    ['c'],
    'only the older write is skipped',
  )
  assert.deepEqual((await store.getCustomers(['c'])).get('c'), customer('c', ['p2']))
  assert.deepEqual(await members(store, 'p1'), ['d'])

  // A batch reprocessed after a crash writes again from the same position.
  assert.deepEqual(await store.writeCustomers([{ id: 'c', stored: customer('c', ['p3']), at: at(10) }]), [])
  assert.deepEqual(await members(store, 'p3'), ['c'])
  // A recreated topic restarts its offsets with later timestamps: not history.
  assert.deepEqual(await store.writeCustomers([{ id: 'c', stored: customer('c', []), at: at(1, 9999) }]), [])

  // A deletion keeps the position, so an older upsert cannot bring the product back.
  assert.deepEqual(await store.writeProducts([{ id: 'p', stored: null, at: at(12, 1012, 'products') }]), [])
  assert.deepEqual(
    await store.writeProducts([{ id: 'p', stored: product('p'), at: at(11, 1011, 'products') }]),
    ['p'],
  )
  assert.equal((await store.getProducts(['p'])).size, 0)
})

test('loadViewInputs: a customer with a missing product, a product referenced by 3 customers', async () => {
  const store = new EntityStore(testRedis.redis, newPrefix())
  await store.upsertProduct(product('100', 10, 5))
  await store.upsertProduct(product('200', 2.5, 40))
  await store.upsertCustomer(customer('1', ['100', '999']))
  await store.upsertCustomer(customer('3', ['200']))
  await store.upsertCustomer(customer('10', ['200']))
  await store.upsertCustomer(customer('2', ['200', '100']))
  const viewIds: ViewId[] = ['customer:1', 'product:200', 'customer:404', 'product:404']
  const inputs = await store.loadViewInputs(viewIds, { customerIdsCap: 2 })
  assert.deepEqual([...inputs.keys()].sort(), [...viewIds].sort())

  const one = inputs.get('customer:1')
  assert.ok(one?.type === 'customer')
  assert.deepEqual([...one.products.keys()], ['100'], 'only its own products, only those that exist')
  const customerView = computeView(one)
  assert.ok(customerView?.type === 'customer')
  assert.deepEqual(customerView.missingProductIds, ['999'])
  assert.deepEqual(customerView.summary, {
    productCount: 2,
    foundCount: 1,
    totalStockValue: 50,
    lowStockCount: 1,
  })

  const shared = inputs.get('product:200')
  assert.ok(shared?.type === 'product')
  assert.equal(shared.customerCount, 3)
  assert.deepEqual(shared.customerIds, ['10', '2'], 'the first two in byte order')
  assert.deepEqual(computeView(shared, { customerIdsCap: 2 }), {
    type: 'product',
    id: '200',
    product: product('200', 2.5, 40).data,
    customerCount: 3,
    customerIds: ['10', '2'],
    customerIdsTruncated: true,
  })

  const unknown = inputs.get('customer:404')
  assert.ok(unknown?.type === 'customer')
  assert.equal(unknown.customer, undefined)
  const unseen = inputs.get('product:404')
  assert.deepEqual(unseen, {
    type: 'product',
    id: '404',
    product: undefined,
    customerCount: 0,
    customerIds: [],
  })

  const countOnly = (await store.loadViewInputs(['product:200'], { customerIdsCap: 0 })).get('product:200')
  assert.ok(countOnly?.type === 'product')
  assert.deepEqual([countOnly.customerCount, countOnly.customerIds], [3, []])
  const all = (await store.loadViewInputs(['product:200'])).get('product:200')
  assert.ok(all?.type === 'product')
  assert.deepEqual(all.customerIds, ['10', '2', '3'], 'default cap 100')
})

test('product cache: a product another consumer changes or deletes is read anew, never served stale', async () => {
  const prefix = newPrefix()
  // Two consumer processes: `reader` caches products, `writer` changes them behind its back.
  const reader = new EntityStore(testRedis.redis, prefix)
  const writer = new EntityStore(testRedis.redis, prefix)
  const stockOf = async (): Promise<number | undefined> => {
    const view = (await reader.loadViewInputs(['customer:1'])).get('customer:1')
    assert.ok(view?.type === 'customer')
    return view.products.get('100')?.data.stock
  }
  const write = (offset: number, stock: number | null) =>
    writer.writeProducts([
      {
        id: '100',
        stored: stock === null ? null : product('100', 10, stock),
        at: at(offset, 2000 + offset, 'products'),
      },
    ])
  await writer.upsertCustomer(customer('1', ['100']))
  await write(1, 5)
  assert.equal(await stockOf(), 5)
  assert.equal(await stockOf(), 5, 'served from the cache while unchanged')

  await write(2, 6)
  assert.equal(await stockOf(), 6, 'a write by another store is seen at once')
  const viaProductView = (await reader.loadViewInputs(['product:100'])).get('product:100')
  assert.ok(viaProductView?.type === 'product')
  assert.equal(viaProductView.product?.data.stock, 6)

  await write(3, null)
  assert.equal(await stockOf(), undefined, 'a deletion by another store is seen at once')
  await write(4, 7)
  assert.equal(await stockOf(), 7, 'and so is the product coming back')

  // A consumer of an earlier release writes the record and its position, and nothing else.
  await testRedis.redis.hSet(
    `${prefix}:consumer:entity:product`,
    '100',
    JSON.stringify(product('100', 10, 8)),
  )
  await testRedis.redis.hSet(
    `${prefix}:consumer:applied-at:product`,
    '100',
    encodePosition(at(5, 2005, 'products')),
  )
  assert.equal(await stockOf(), 8, 'a write by an earlier release is seen at once (a rolling upgrade)')

  // Written from no message: no position, so nothing is cached.
  await writer.upsertProduct(product('100', 10, 9))
  assert.equal(await stockOf(), 9)
  await writer.upsertProduct(product('100', 10, 10))
  assert.equal(await stockOf(), 10, 'without a position the record is read each time')
})

test('bulk: 10k customers with 1–5 products each, written and loaded (timings printed)', async () => {
  const store = new EntityStore(testRedis.redis, newPrefix())
  const productCount = 1000
  const products = Array.from({ length: productCount }, (_, i) => product(`p${i}`, (i % 50) + 0.99, i % 20))
  const customers = Array.from({ length: 10_000 }, (_, i) =>
    customer(
      `c${i}`,
      Array.from({ length: (i % 5) + 1 }, (_, k) => `p${(i * 7 + k * 131) % (productCount + 50)}`),
    ),
  )
  let started = performance.now()
  await Promise.all(products.map((p) => store.upsertProduct(p)))
  for (let i = 0; i < customers.length; i += 1000) {
    await Promise.all(customers.slice(i, i + 1000).map((c) => store.upsertCustomer(c)))
  }
  const writeMs = performance.now() - started

  started = performance.now()
  const viewIds = customers.map((c) => `customer:${c.data.id}` as const)
  const inputs = await store.loadViewInputs(viewIds)
  const customerLoadMs = performance.now() - started
  started = performance.now()
  const productInputs = await store.loadViewInputs(products.map((p) => `product:${p.data.id}` as const))
  const productLoadMs = performance.now() - started

  assert.equal(inputs.size, 10_000)
  const sample = inputs.get('customer:c9999')
  assert.ok(sample?.type === 'customer' && sample.customer !== undefined)
  for (const productId of sample.customer.data.productIds) {
    assert.equal(sample.products.has(productId), Number(productId.slice(1)) < productCount, productId)
  }
  const totalReferences = [...productInputs.values()].reduce(
    (sum, input) => sum + (input.type === 'product' ? input.customerCount : 0),
    0,
  )
  const listed = customers.reduce(
    (sum, c) => sum + new Set(c.data.productIds.filter((id) => Number(id.slice(1)) < productCount)).size,
    0,
  )
  assert.equal(totalReferences, listed, 'every reference to a known product is indexed once')
  console.error(
    `entity-store bulk: 10k customers + 1k products written in ${writeMs.toFixed(0)} ms, ` +
      `10k customer views loaded in ${customerLoadMs.toFixed(0)} ms, 1k product views in ${productLoadMs.toFixed(0)} ms`,
  )
})
