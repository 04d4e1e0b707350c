import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Dataset } from '../../src/simulator/dataset.ts'
import type { Customer } from '../../src/simulator/records.ts'

const fixedClock = () => Date.UTC(2026, 5, 1, 12, 0, 0)
const isoDate = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

describe('simulator data set generation', () => {
  it('gives the same records for the same seed and different ones for another seed', () => {
    const a = new Dataset({ customers: 300, products: 40, seed: 7 }).snapshot()
    const b = new Dataset({ customers: 300, products: 40, seed: 7 }).snapshot()
    const c = new Dataset({ customers: 300, products: 40, seed: 8 }).snapshot()
    assert.deepEqual(a, b)
    assert.notDeepEqual(a.customers, c.customers)
    assert.notDeepEqual(a.products, c.products)
  })

  it('generates the requested counts with unique string ids and the design §3 fields', () => {
    const { customers, products } = new Dataset({ customers: 500, products: 60, seed: 1 }).snapshot()
    assert.equal(customers.length, 500)
    assert.equal(products.length, 60)
    assert.equal(new Set(customers.map((c) => c.id)).size, 500)
    assert.equal(new Set(products.map((p) => p.id)).size, 60)
    const productIds = new Set(products.map((p) => p.id))
    for (const c of customers) {
      assert.deepEqual(Object.keys(c).sort(), ['email', 'id', 'name', 'productIds', 'status', 'updatedAt'])
      assert.equal(typeof c.id, 'string')
      assert.match(c.email, /@example\.com$/)
      assert.match(c.updatedAt, isoDate)
      assert.ok(
        c.productIds.length >= 1 && c.productIds.length <= 5,
        `customer ${c.id} has ${c.productIds.length}`,
      )
      assert.equal(new Set(c.productIds).size, c.productIds.length, 'productIds are distinct')
      for (const id of c.productIds)
        assert.ok(productIds.has(id), `customer ${c.id} references unknown ${id}`)
    }
    for (const p of products) {
      assert.deepEqual(Object.keys(p).sort(), ['id', 'name', 'price', 'sku', 'stock', 'updatedAt'])
      assert.equal(typeof p.id, 'string')
      assert.equal(typeof p.price, 'number')
      assert.ok(Number.isInteger(p.stock) && p.stock >= 0)
      assert.match(p.updatedAt, isoDate)
    }
    // Ids follow the brief's sample: customers 1, 2, …; products 100, 200, …
    assert.deepEqual([customers[0]?.id, customers[1]?.id], ['1', '2'])
    assert.deepEqual([products[0]?.id, products[1]?.id], ['100', '200'])
  })

  it('honours a configured number of products per customer', () => {
    const { customers } = new Dataset({
      customers: 200,
      products: 30,
      seed: 3,
      productsPerCustomer: { min: 2, max: 2 },
    }).snapshot()
    for (const c of customers) assert.equal(c.productIds.length, 2)
  })

  it('gives customers no products when there are none to reference', () => {
    const { customers } = new Dataset({ customers: 10, products: 0, seed: 3 }).snapshot()
    for (const c of customers) assert.deepEqual(c.productIds, [])
  })

  it('emits numeric ids for the configured share of records', () => {
    const all = new Dataset({ customers: 100, products: 100, seed: 5, numericIdShare: 1 }).snapshot()
    assert.ok(all.customers.every((c) => typeof c.id === 'number'))
    assert.ok(all.products.every((p) => typeof p.id === 'number'))
    // productIds stay strings (design §3) and still name existing products.
    assert.ok(all.customers.every((c) => c.productIds.every((id) => typeof id === 'string')))
    const some = new Dataset({ customers: 2000, products: 10, seed: 5, numericIdShare: 0.3 }).snapshot()
    const numeric = some.customers.filter((c) => typeof c.id === 'number').length
    assert.ok(numeric > 450 && numeric < 750, `expected about 600 numeric ids, got ${numeric}`)
  })

  it('rejects impossible options', () => {
    assert.throws(() => new Dataset({ customers: -1, products: 1, seed: 1 }), RangeError)
    assert.throws(() => new Dataset({ customers: 1, products: 1, seed: 1, numericIdShare: 2 }), RangeError)
    assert.throws(
      () => new Dataset({ customers: 1, products: 1, seed: 1, productsPerCustomer: { min: 3, max: 2 } }),
      RangeError,
    )
  })

  it('generates 100k customers and 10k products in well under the benchmark budget', () => {
    const started = performance.now()
    const dataset = new Dataset({ customers: 100_000, products: 10_000, seed: 42 })
    const elapsed = performance.now() - started
    assert.equal(dataset.state().customers.count, 100_000)
    // The design target is "well under a second or two"; the margin absorbs a loaded CI machine.
    assert.ok(elapsed < 3000, `took ${elapsed.toFixed(0)} ms`)
  })
})

describe('simulator data set mutations', () => {
  it('reports exactly the records a bulk mutation changed, deleted and created', () => {
    const dataset = new Dataset({ customers: 100, products: 20, seed: 11 }, fixedClock)
    const before = new Map(dataset.snapshot().customers.map((c) => [String(c.id), c]))
    const productsVersion = dataset.state().products.version
    const result = dataset.mutate({
      changes: 10,
      deletions: 5,
      creations: 3,
      collection: 'customers',
      seed: 99,
    })

    assert.equal(result.customers.changed.length, 10)
    assert.equal(result.customers.deleted.length, 5)
    assert.equal(result.customers.created.length, 3)
    assert.deepEqual(result.products, { created: [], changed: [], deleted: [] })
    const touched = [...result.customers.changed, ...result.customers.deleted]
    assert.equal(new Set(touched).size, 15, 'changed and deleted records are distinct')

    const after = new Map(dataset.snapshot().customers.map((c) => [String(c.id), c]))
    assert.equal(after.size, 100 - 5 + 3)
    for (const id of result.customers.deleted) assert.equal(after.has(id), false)
    for (const id of result.customers.created) {
      assert.equal(before.has(id), false)
      assert.ok(after.has(id))
    }
    for (const id of result.customers.changed) {
      const old = before.get(id) as Customer
      const now = after.get(id) as Customer
      assert.notDeepEqual(
        { ...now, updatedAt: '' },
        { ...old, updatedAt: '' },
        `customer ${id} content changed`,
      )
      assert.equal(now.updatedAt, new Date(fixedClock()).toISOString())
    }
    // Everything else is untouched.
    const untouched = [...before.keys()].filter((id) => !touched.includes(id))
    for (const id of untouched) assert.deepEqual(after.get(id), before.get(id))
    assert.equal(dataset.state().products.version, productsVersion)
    assert.ok(result.versions.customers > 1)
  })

  it('repeats a seeded mutation exactly', () => {
    const run = () => {
      const dataset = new Dataset({ customers: 50, products: 10, seed: 2 }, fixedClock)
      const result = dataset.mutate({ changes: 7, deletions: 2, creations: 2, seed: 5 })
      return { result, snapshot: dataset.snapshot() }
    }
    assert.deepEqual(run(), run())
  })

  it('applies counts to both collections by default and clamps to what exists', () => {
    const dataset = new Dataset({ customers: 4, products: 3, seed: 1 }, fixedClock)
    const result = dataset.mutate({ deletions: 10 })
    assert.equal(result.customers.deleted.length, 4)
    assert.equal(result.products.deleted.length, 3)
    assert.deepEqual(dataset.state().customers.count, 0)
  })

  it('patches, puts and removes single records, bumping the version each time', () => {
    const dataset = new Dataset({ customers: 5, products: 5, seed: 1 }, fixedClock)
    const v0 = dataset.state().products.version
    const patched = dataset.patch('products', '200', { stock: 0 })
    assert.equal(patched?.stock, 0)
    assert.equal(patched?.id, '200')
    assert.equal(patched?.updatedAt, new Date(fixedClock()).toISOString())
    assert.equal(dataset.state().products.version, v0 + 1)
    assert.equal(dataset.patch('products', 'nope', { stock: 1 }), undefined)
    assert.equal(dataset.state().products.version, v0 + 1, 'a patch of nothing is no mutation')

    const record = {
      id: 900,
      sku: 'S-900',
      name: 'New',
      price: 1.5,
      stock: 3,
      updatedAt: '2026-02-01T00:00:00.000Z',
    }
    assert.equal(dataset.put('products', record), 'created')
    assert.equal(dataset.put('products', { ...record, stock: 4 }), 'replaced')
    const ids = dataset.snapshot().products.map((p) => p.id)
    assert.deepEqual(
      ids,
      ['100', '200', '300', '400', '500', 900],
      'a new record goes last, a replaced one stays',
    )

    assert.equal(dataset.remove('products', '900'), true)
    assert.equal(dataset.remove('products', '900'), false)
    assert.equal(dataset.state().products.version, v0 + 4)
  })

  it('keeps versions increasing when the data set is replaced', () => {
    const dataset = new Dataset({ customers: 5, products: 5, seed: 1 })
    dataset.mutate({ changes: 1 })
    const before = dataset.state()
    dataset.replace({ customers: 7, products: 2, seed: 9 })
    const after = dataset.state()
    assert.equal(after.customers.count, 7)
    assert.equal(after.products.count, 2)
    assert.equal(after.seed, 9)
    assert.ok(after.customers.version > before.customers.version)
    assert.ok(after.products.version > before.products.version)
    assert.deepEqual(dataset.snapshot(), new Dataset({ customers: 7, products: 2, seed: 9 }).snapshot())
  })
})
