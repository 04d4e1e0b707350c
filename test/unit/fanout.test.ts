import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import {
  type AppliedSnapshot,
  customerFanout,
  type Fanout,
  isDuplicate,
  productFanout,
} from '../../src/domain/fanout.ts'

function refresh(fanout: Fanout): Extract<Fanout, { kind: 'refresh' }> {
  assert.equal(fanout.kind, 'refresh')
  return fanout as Extract<Fanout, { kind: 'refresh' }>
}

const productViewsOf = (views: readonly string[]) =>
  new Set(views.filter((view) => view.startsWith('product:')).map((view) => view.slice('product:'.length)))

test('a record with the applied content hash is a duplicate; a tombstone of an absent entity too', () => {
  const applied: AppliedSnapshot = { hash: 'h1', productIds: ['100'] }
  assert.equal(isDuplicate(applied, { contentHash: 'h1' }), true)
  assert.equal(isDuplicate(applied, { contentHash: 'h2' }), false)
  assert.equal(isDuplicate(undefined, { contentHash: 'h1' }), false)
  assert.equal(isDuplicate(undefined, null), true)
  assert.equal(isDuplicate(applied, null), false)
  assert.deepEqual(customerFanout('1', applied, { contentHash: 'h1', productIds: ['100'] }), {
    kind: 'duplicate',
  })
  assert.deepEqual(productFanout('100', { hash: 'p' }, { contentHash: 'p' }, ['1']), { kind: 'duplicate' })
  assert.deepEqual(productFanout('100', undefined, null, ['1']), { kind: 'duplicate' })
})

test('a new customer refreshes its view and the views of all its products', () => {
  const fanout = refresh(
    customerFanout('1', undefined, { contentHash: 'h', productIds: ['100', '200', '100'] }),
  )
  assert.deepEqual(fanout.views, ['customer:1', 'product:100', 'product:200'])
  assert.deepEqual(fanout.applied, { hash: 'h', productIds: ['100', '200'] })
})

test('a customer change refreshes products added and removed, not those kept', () => {
  const fanout = refresh(
    customerFanout(
      '1',
      { hash: 'h1', productIds: ['100', '200'] },
      { contentHash: 'h2', productIds: ['200', '300'] },
    ),
  )
  assert.deepEqual(fanout.views, ['customer:1', 'product:300', 'product:100'])
  const rename = refresh(
    customerFanout('1', { hash: 'h1', productIds: ['100'] }, { contentHash: 'h2', productIds: ['100'] }),
  )
  assert.deepEqual(rename.views, ['customer:1'], 'same productIds, other fields changed')
})

test('a customer deletion refreshes its view and every product it had, and drops the snapshot', () => {
  const fanout = refresh(customerFanout('1', { hash: 'h1', productIds: ['100', '200'] }, null))
  assert.deepEqual(fanout.views, ['customer:1', 'product:100', 'product:200'])
  assert.equal(fanout.applied, undefined)
})

test('a product change or deletion refreshes its view and each referencing customer once', () => {
  const change = refresh(productFanout('100', { hash: 'p1' }, { contentHash: 'p2' }, ['2', '1', '2']))
  assert.deepEqual(change.views, ['product:100', 'customer:2', 'customer:1'])
  assert.deepEqual(change.applied, { hash: 'p2' })
  const created = refresh(productFanout('100', undefined, { contentHash: 'p1' }, []))
  assert.deepEqual(created.views, ['product:100'])
  const deletion = refresh(productFanout('100', { hash: 'p1' }, null, ['1']))
  assert.deepEqual(deletion.views, ['product:100', 'customer:1'])
  assert.equal(deletion.applied, undefined)
})

const ids = fc.array(fc.constantFrom('1', '2', '3', '4', '5', '6', 'a:b'), { maxLength: 8 })
const hash = fc.constantFrom('h1', 'h2', 'h3')
const applied = fc.option(fc.record({ hash, productIds: ids.map((list) => [...new Set(list)]) }), {
  nil: undefined,
})
const incoming = fc.option(fc.record({ contentHash: hash, productIds: ids }), { nil: null })

test('property: a customer message refreshes exactly the symmetric difference of productIds, once each', () => {
  fc.assert(
    fc.property(applied, incoming, (before, message) => {
      const fanout = customerFanout('c', before, message)
      if (isDuplicate(before, message)) {
        assert.deepEqual(fanout, { kind: 'duplicate' })
        return
      }
      const { views, applied: next } = refresh(fanout)
      const old = new Set(before?.productIds ?? [])
      const now = new Set(message?.productIds ?? [])
      const expected = new Set([...old, ...now].filter((id) => old.has(id) !== now.has(id)))
      assert.equal(views[0], 'customer:c', 'its own view first')
      assert.equal(views.filter((view) => view.startsWith('customer:')).length, 1)
      assert.equal(new Set(views).size, views.length, 'no view twice')
      assert.deepEqual(productViewsOf(views), expected)
      assert.deepEqual(
        next,
        message === null ? undefined : { hash: message.contentHash, productIds: [...now] },
      )
    }),
    { numRuns: 1000 },
  )
})

// As in production, equal content hashes mean equal records.
const versions = fc.option(
  fc
    .record({ name: fc.constantFrom('x', 'y'), productIds: ids })
    .map(({ name, productIds }) => ({ contentHash: JSON.stringify([name, productIds]), productIds })),
  { nil: null },
)

test('property: over any sequence of customer messages, a product view is refreshed whenever its membership changed', () => {
  fc.assert(
    fc.property(fc.array(versions, { maxLength: 12 }), (messages) => {
      let snapshot: AppliedSnapshot | undefined
      for (const message of messages) {
        const fanout = customerFanout('c', snapshot, message)
        if (fanout.kind === 'duplicate') continue
        const before = new Set<string>(snapshot?.productIds ?? [])
        const after = new Set<string>(message?.productIds ?? [])
        const refreshed = productViewsOf(fanout.views)
        for (const id of new Set([...before, ...after])) {
          assert.equal(refreshed.has(id), before.has(id) !== after.has(id), `product ${id}`)
        }
        snapshot = fanout.applied
      }
      const last = messages.at(-1)
      if (last !== undefined)
        assert.deepEqual(new Set(snapshot?.productIds ?? []), new Set(last?.productIds ?? []))
    }),
  )
})
