import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { planChanges } from '../../src/sources/change-detection.ts'

const rec = (id: string, hash: string) => ({ id, hash, record: { id } })
const options = { complete: true, maxDeleteRatio: 0.5 }

test('new and changed records are published, unchanged ones counted', () => {
  const known = new Map([
    ['1', 'h1'],
    ['2', 'h2'],
  ])
  const plan = planChanges([rec('1', 'h1'), rec('2', 'h2-new'), rec('3', 'h3')], known, options)
  assert.deepEqual(
    plan.upserts.map((u) => u.id),
    ['2', '3'],
  )
  assert.equal(plan.unchanged, 1)
  assert.deepEqual(plan.deletions, [])
})

test('an id missing from a complete scan becomes a deletion', () => {
  const known = new Map([
    ['1', 'h1'],
    ['2', 'h2'],
    ['3', 'h3'],
  ])
  const plan = planChanges([rec('1', 'h1'), rec('2', 'h2')], known, options)
  assert.deepEqual(plan.deletions, ['3'])
  assert.equal(plan.refusedDeletions, 0)
})

test('an incomplete scan never deletes', () => {
  const known = new Map([['1', 'h1']])
  assert.deepEqual(planChanges([], known, { ...options, complete: false }).deletions, [])
})

test('the guard refuses to delete more than the allowed share of known ids', () => {
  const known = new Map(['1', '2', '3', '4'].map((id) => [id, `h${id}`] as [string, string]))
  const plan = planChanges([rec('1', 'h1')], known, options)
  assert.deepEqual(plan.deletions, [])
  assert.equal(plan.refusedDeletions, 3)
  const allowed = planChanges([rec('1', 'h1'), rec('2', 'h2')], known, options)
  assert.deepEqual(allowed.deletions, ['3', '4'])
})

test('deletions are exactly the known ids a complete scan did not list, whatever the mix', () => {
  const ids = fc.uniqueArray(fc.constantFrom('1', '2', '3', '4', '5', '6', '7', '8'), { maxLength: 8 })
  fc.assert(
    fc.property(ids, ids, fc.constantFrom('h', 'x'), (knownIds, listedIds, hash) => {
      const known = new Map(knownIds.map((id) => [id, 'h'] as [string, string]))
      const plan = planChanges(
        listedIds.map((id) => rec(id, hash)),
        known,
        { complete: true, maxDeleteRatio: 1 },
      )
      const vanished = knownIds.filter((id) => !listedIds.includes(id))
      assert.deepEqual(plan.deletions, vanished)
      assert.equal(plan.unchanged, hash === 'h' ? listedIds.filter((id) => known.has(id)).length : 0)
      assert.equal(plan.upserts.length + plan.unchanged, listedIds.length)
    }),
  )
})

test('a known id listed with an invalid record is held: neither published nor deleted', () => {
  const known = new Map([
    ['1', 'h1'],
    ['2', 'h2'],
    ['3', 'h3'],
  ])
  const plan = planChanges([rec('1', 'h1')], known, { ...options, held: new Set(['2', 'new-but-invalid']) })
  assert.deepEqual(plan.deletions, ['3'], 'only the id absent from the listing is deleted')
  assert.equal(plan.held, 1, 'a held id counts only when it was known')
  assert.deepEqual(plan.upserts, [])
})

test('held ids do not count as vanished for the mass-deletion guard', () => {
  const known = new Map([
    ['1', 'h1'],
    ['2', 'h2'],
  ])
  const plan = planChanges([], known, { complete: true, maxDeleteRatio: 0.5, held: new Set(['1', '2']) })
  assert.equal(plan.refusedDeletions, 0)
  assert.deepEqual(plan.deletions, [])
  assert.equal(plan.held, 2)
})
