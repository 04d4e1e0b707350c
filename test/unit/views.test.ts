import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { canonicalJson, contentHash } from '../../src/domain/canonical.ts'
import type { Customer, Product } from '../../src/domain/records.ts'
import {
  type CustomerViewInputs,
  compareIds,
  computeView,
  customerView,
  type DeliveryRecord,
  decideDelivery,
  deletedView,
  formatViewId,
  idempotencyKey,
  isCovered,
  type ProductViewInputs,
  parseViewId,
  productView,
  sortIds,
  type ViewPayload,
  viewHash,
  viewJson,
  viewPolledAt,
} from '../../src/domain/views.ts'
import { customerRecord, productRecord, stored } from '../helpers/entities.ts'

const customer = customerRecord
const product = productRecord

const customerInputs = (data: Customer | undefined, products: Product[]): CustomerViewInputs => ({
  type: 'customer',
  id: data?.id ?? 'gone',
  customer: data === undefined ? undefined : stored(data),
  products: new Map(products.map((p) => [p.id, stored(p)])),
})

test('view ids format as <type>:<id> and parse back at the first colon', () => {
  assert.equal(formatViewId('customer', '1'), 'customer:1')
  assert.deepEqual(parseViewId('product:100'), { type: 'product', id: '100' })
  assert.deepEqual(parseViewId('customer:a:b'), { type: 'customer', id: 'a:b' })
  for (const bad of ['customer', 'customer:', 'order:1', ':1', ''])
    assert.equal(parseViewId(bad), undefined, bad)
})

test('a customer view lists found products in productIds order, once each, and the missing ones', () => {
  const view = customerView(
    customerInputs(customer('1', ['200', '100', '300', '200', '100']), [
      product('100', 10, 5),
      product('200', 2.5, 40),
    ]),
  )
  assert.ok(view)
  assert.deepEqual(
    view.products.map((p) => p.id),
    ['200', '100'],
  )
  assert.deepEqual(view.missingProductIds, ['300'])
  assert.deepEqual(
    view.customer.productIds,
    ['200', '100', '300', '200', '100'],
    'the customer record as sent',
  )
  assert.deepEqual(view.summary, { productCount: 3, foundCount: 2, totalStockValue: 150, lowStockCount: 1 })
})

test('the stock value is rounded to cents as written, and the low-stock threshold is a parameter', () => {
  const inputs = customerInputs(customer('1', ['a', 'b', 'c']), [
    product('a', 1.005, 1),
    product('b', 0.1, 3),
    product('c', 19.99, 10),
  ])
  const view = customerView(inputs)
  assert.ok(view)
  // 1.005 + 0.30000000000000004 + 199.89999999999998 sums to 201.20499999999998: 201.205, rounded up.
  assert.equal(view.summary.totalStockValue, 201.21)
  assert.equal(view.summary.lowStockCount, 2, 'stock 1 and 3 are below the default 10, 10 is not')
  assert.equal(customerView(inputs, { lowStockThreshold: 11 })?.summary.lowStockCount, 3)
  assert.equal(customerView(inputs, { lowStockThreshold: 1 })?.summary.lowStockCount, 0)
})

test('a customer with no productIds has an empty, zero summary', () => {
  const view = customerView(customerInputs(customer('1', []), []))
  assert.deepEqual(view?.summary, { productCount: 0, foundCount: 0, totalStockValue: 0, lowStockCount: 0 })
})

const productInputs = (customerIds: string[], customerCount = customerIds.length): ProductViewInputs => ({
  type: 'product',
  id: '100',
  product: stored(product('100', 10, 5)),
  customerCount,
  customerIds,
})

test('a product view lists referencing customers sorted by UTF-8 bytes, capped, and says when it is', () => {
  const view = productView(productInputs(['9', '10', '2', '10'], 3), { customerIdsCap: 3 })
  assert.ok(view)
  assert.deepEqual(view.customerIds, ['10', '2', '9'])
  assert.equal(view.customerCount, 3)
  assert.equal(view.customerIdsTruncated, false)
  const capped = productView(productInputs(['c', 'a', 'b'], 3), { customerIdsCap: 2 })
  assert.deepEqual(capped?.customerIds, ['a', 'b'])
  assert.equal(capped?.customerIdsTruncated, true)
  const partial = productView(productInputs(['a', 'b'], 250))
  assert.equal(partial?.customerIdsTruncated, true, 'the store passed only the first ids of 250')
})

test('ids sort as Redis sorts equal-score members: by UTF-8 bytes, not UTF-16 units', () => {
  // U+FF61 is one UTF-16 unit above the surrogates of U+1F600, but its UTF-8 bytes are smaller.
  assert.deepEqual(sortIds(['\u{1F600}', '\uFF61', 'a']), ['a', '\uFF61', '\u{1F600}'])
  fc.assert(
    fc.property(fc.array(fc.string({ unit: 'grapheme' })), (ids) => {
      const sorted = sortIds(ids)
      assert.equal(sorted.length, new Set(ids).size)
      for (let i = 1; i < sorted.length; i++) {
        const [a, b] = [sorted[i - 1] ?? '', sorted[i] ?? '']
        assert.ok(Buffer.compare(Buffer.from(a), Buffer.from(b)) < 0)
        assert.ok(compareIds(a, b) < 0)
      }
    }),
  )
})

test('a view whose entity does not exist is absent', () => {
  assert.equal(computeView(customerInputs(undefined, [product('1', 1, 1)])), undefined)
  assert.equal(computeView({ ...productInputs(['1']), product: undefined }), undefined)
})

test('viewPolledAt is the latest poll time among the inputs', () => {
  const inputs: CustomerViewInputs = {
    type: 'customer',
    id: '1',
    customer: stored(customer('1', ['a', 'b']), '2024-05-01T10:00:00.000Z'),
    products: new Map([
      ['a', stored(product('a', 1, 1), '2024-05-01T10:05:00.000Z')],
      ['b', stored(product('b', 1, 1), '2024-05-01T09:00:00.000Z')],
    ]),
  }
  assert.equal(viewPolledAt(inputs), '2024-05-01T10:05:00.000Z')
  assert.equal(viewPolledAt({ ...productInputs([]), product: undefined }), undefined)
})

test('the view hash ignores key order and changes with content', () => {
  const view = productView(productInputs(['1']))
  assert.ok(view)
  const reordered = Object.fromEntries(Object.entries(view).reverse()) as ViewPayload
  assert.equal(viewHash(reordered), viewHash(view))
  assert.notEqual(viewHash({ ...view, customerCount: 2 }), viewHash(view))
})

test('idempotency keys have the form <type>:<id>:<hex> and chain on the previous key', () => {
  const key = idempotencyKey('customer:a:b', undefined, 'h1')
  assert.match(key, /^customer:a:b:[0-9a-f]{64}$/)
  assert.equal(idempotencyKey('customer:a:b', undefined, 'h1'), key, 'deterministic')
  const a1 = idempotencyKey('product:1', undefined, 'hA')
  const b = idempotencyKey('product:1', a1, 'hB')
  const a2 = idempotencyKey('product:1', b, 'hA')
  assert.equal(new Set([a1, b, a2]).size, 3, 'A → B → A: three distinct keys')
})

const viewId = 'product:100' as const
const viewA = computeView(productInputs(['1'])) as ViewPayload
const viewB = computeView(productInputs(['1', '2'])) as ViewPayload

test('decideDelivery: first delivery, unchanged, retry of an unknown outcome, new content', () => {
  const first = decideDelivery(viewId, viewA, undefined)
  assert.equal(first.action, 'deliver')
  assert.ok(first.action === 'deliver')
  assert.deepEqual(first.payload, viewA)
  assert.equal(first.hash, viewHash(viewA))
  assert.equal(first.key, idempotencyKey(viewId, undefined, first.hash))
  assert.equal(first.resend, false)

  const confirmed: DeliveryRecord = { key: first.key, hash: first.hash, confirmed: true }
  assert.deepEqual(decideDelivery(viewId, viewA, confirmed), { action: 'skip' })

  const unconfirmed = { ...confirmed, confirmed: false }
  const again = decideDelivery(viewId, viewA, unconfirmed)
  assert.ok(again.action === 'deliver')
  assert.equal(again.key, first.key, 'same content after a crash: same key, the sink dedupes')
  assert.equal(again.resend, true)

  const changed = decideDelivery(viewId, viewB, confirmed)
  assert.ok(changed.action === 'deliver')
  assert.equal(changed.key, idempotencyKey(viewId, first.key, viewHash(viewB)))
})

test('decideDelivery: an absent view sends a deletion only when something was delivered', () => {
  assert.deepEqual(decideDelivery(viewId, undefined, undefined), { action: 'skip' })
  const last: DeliveryRecord = { key: 'product:100:x', hash: viewHash(viewA), confirmed: true }
  const deletion = decideDelivery(viewId, undefined, last)
  assert.ok(deletion.action === 'deliver')
  assert.deepEqual(deletion.payload, { type: 'product', id: '100', deleted: true })
  const deleted: DeliveryRecord = { key: deletion.key, hash: deletion.hash, confirmed: true }
  assert.deepEqual(decideDelivery(viewId, undefined, deleted), { action: 'skip' })
  const recreated = decideDelivery(viewId, viewA, deleted)
  assert.ok(recreated.action === 'deliver')
  assert.notEqual(recreated.key, idempotencyKey(viewId, undefined, viewHash(viewA)), 'not the old key of A')
})

test('decideDelivery: A delivered, B POSTed but its 2xx not recorded, back to A: A is delivered again', () => {
  const a = decideDelivery(viewId, viewA, undefined)
  assert.ok(a.action === 'deliver')
  const b = decideDelivery(viewId, viewB, { key: a.key, hash: a.hash, confirmed: true })
  assert.ok(b.action === 'deliver')
  const back = decideDelivery(viewId, viewA, { key: b.key, hash: b.hash, confirmed: false })
  assert.ok(back.action === 'deliver', 'the sink may hold B')
  assert.notEqual(back.key, a.key)
  assert.notEqual(back.key, b.key)
})

test('decideDelivery: other content waits while a request of the last attempt may still land', () => {
  const a = decideDelivery(viewId, viewA, undefined)
  assert.ok(a.action === 'deliver')
  const inAir: DeliveryRecord = { key: a.key, hash: a.hash, confirmed: false, mayLandUntil: 2000 }
  assert.deepEqual(decideDelivery(viewId, viewB, inAir, 1999), { action: 'wait', until: 2000 })
  assert.deepEqual(decideDelivery(viewId, undefined, inAir, 1999), { action: 'wait', until: 2000 })
  const resend = decideDelivery(viewId, viewA, inAir, 1999)
  assert.ok(resend.action === 'deliver' && resend.key === a.key, 'the same content goes at once: same key')
  const later = decideDelivery(viewId, viewB, inAir, 2000)
  assert.ok(later.action === 'deliver' && later.key === idempotencyKey(viewId, a.key, viewHash(viewB)))
  const lettered: DeliveryRecord = { ...inAir, confirmed: true }
  assert.deepEqual(decideDelivery(viewId, viewA, lettered, 1999), { action: 'skip' }, 'settled content')
  assert.deepEqual(decideDelivery(viewId, viewB, lettered, 1999), { action: 'wait', until: 2000 })
})

test('decideDelivery: a record in doubt delivers even unchanged content again, under a fresh key', () => {
  const a = decideDelivery(viewId, viewA, undefined)
  assert.ok(a.action === 'deliver')
  const doubt: DeliveryRecord = { key: a.key, hash: a.hash, confirmed: true, doubt: true }
  const again = decideDelivery(viewId, viewA, doubt)
  assert.ok(again.action === 'deliver')
  assert.notEqual(again.key, a.key, 'the old key may be what the sink already deduped')
  assert.equal(again.resend, false)
  assert.deepEqual(decideDelivery(viewId, viewA, { ...doubt, mayLandUntil: 10 }, 9), {
    action: 'wait',
    until: 10,
  })
})

/**
 * The whole delivery protocol against a model of the sink (dedupes on the key, a view holds its
 * latest record), with a crash at any point: before the POST reaches the sink, or after the sink
 * stored it but before the 2xx was recorded. Once the crashes stop, the sink must hold the current
 * view, and no key may ever have carried two different payloads.
 */
test('property: with crashes anywhere, the sink ends holding the current view and keys are never reused', () => {
  const states = [undefined, viewA, viewB, computeView(productInputs(['3'])) as ViewPayload]
  const step = fc.record({
    state: fc.integer({ min: 0, max: states.length - 1 }),
    outcome: fc.constantFrom('ok', 'lost-request', 'lost-ack'),
  })
  fc.assert(
    fc.property(fc.array(step, { maxLength: 30 }), (steps) => {
      const sinkKeys = new Map<string, string>()
      let sinkView: string | undefined
      let record: DeliveryRecord | undefined
      let current: ViewPayload | undefined
      const deliver = (outcome: string): boolean => {
        const decision = decideDelivery(viewId, current, record)
        if (decision.action !== 'deliver') return false
        record = { key: decision.key, hash: decision.hash, confirmed: false }
        if (outcome === 'lost-request') return true
        const body = JSON.stringify(decision.payload)
        const seen = sinkKeys.get(decision.key)
        if (seen === undefined) {
          sinkKeys.set(decision.key, body)
          sinkView = 'deleted' in decision.payload ? undefined : viewHash(decision.payload)
        } else assert.equal(seen, body, 'a key was reused for other content')
        if (outcome === 'ok') record = { ...record, confirmed: true }
        return true
      }
      for (const { state, outcome } of steps) {
        current = states[state]
        deliver(outcome)
      }
      let rounds = 0
      while (deliver('ok')) rounds += 1
      assert.ok(rounds <= 1, 'one successful delivery settles the view')
      assert.equal(sinkView, current === undefined ? undefined : viewHash(current))
    }),
    { numRuns: 500 },
  )
})

test('isCovered: a stamp at or below the evaluated clock is covered; no stamp or no evaluation never is', () => {
  assert.equal(isCovered(5, 5), true)
  assert.equal(isCovered(4, 5), true)
  assert.equal(isCovered(6, 5), false, 'a refresh newer than the last evaluation is evaluated')
  assert.equal(isCovered(undefined, 5), false, 'unstamped: a retry round or a DLQ replay')
  assert.equal(isCovered(5, undefined), false, 'no settled evaluation remembered')
})

test('viewJson is canonicalJson of the payload, for any records, and viewHash its SHA-256', () => {
  const text = fc.string({ unit: 'binary' })
  const extra = fc.dictionary(text, fc.jsonValue(), { maxKeys: 3 })
  const productArb = fc
    .record({
      id: fc.constantFrom('1', '2', '10', 'p:3'),
      sku: text,
      name: text,
      price: fc.double({ min: 0, max: 1e6, noNaN: true }),
      stock: fc.integer(),
      updatedAt: text,
    })
    .chain((p) => extra.map((more) => ({ ...more, ...p }) as Product))
  const customerArb = fc
    .record({
      id: text,
      name: text,
      email: text,
      status: text,
      productIds: fc.array(fc.constantFrom('1', '2', '10', 'p:3', 'missing'), { maxLength: 6 }),
      updatedAt: text,
    })
    .chain((c) => extra.map((more) => ({ ...more, ...c }) as Customer))
  fc.assert(
    fc.property(
      customerArb,
      fc.array(productArb, { maxLength: 4 }),
      fc.array(text, { maxLength: 120 }),
      fc.nat(),
      (customer, products, customerIds, extraCount) => {
        const known = new Map(products.map((p) => [p.id, stored(p)]))
        const views = [
          computeView({ type: 'customer', id: customer.id, customer: stored(customer), products: known }),
          ...products.map((p) =>
            computeView({
              type: 'product',
              id: p.id,
              product: stored(p),
              customerCount: customerIds.length + extraCount,
              customerIds,
            }),
          ),
          deletedView('customer', customer.id),
        ]
        for (const view of views) {
          assert.ok(view !== undefined)
          assert.equal(viewJson(view), canonicalJson(view))
          assert.equal(viewHash(view), contentHash(view))
        }
      },
    ),
  )
})
