/** The group assignor: partitions go round robin to the members that subscribed to their topic. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { subscribedRoundRobin } from '../../src/kafka/assignor.ts'

const metadata = {
  topics: new Map([
    ['customer_data', { partitionsCount: 6 }],
    ['inventory_data', { partitionsCount: 6 }],
    ['refresh', { partitionsCount: 6 }],
  ]),
} as unknown as Parameters<typeof subscribedRoundRobin>[3]

/** Per member, its partitions as `topic-partition`, sorted. */
function assigned(members: Record<string, readonly string[]>, leaderTopics: readonly string[] = []) {
  const result = subscribedRoundRobin(
    Object.keys(members)[0] ?? '',
    new Map(Object.entries(members).map(([id, topics]) => [id, { topics: [...topics] }])),
    new Set(leaderTopics),
    metadata,
  )
  return Object.fromEntries(
    result.map(({ memberId, assignments }) => [
      memberId,
      [...assignments.values()]
        .flatMap(({ topic, partitions }) => partitions.map((p) => `${topic}-${p}`))
        .sort(),
    ]),
  )
}

test('a leader that subscribes to nothing still assigns every partition to the members that read them', () => {
  const result = assigned({ zombie: [], a: ['refresh'], b: ['refresh'] }, [])
  assert.deepEqual(result.zombie, [])
  assert.equal((result.a ?? []).length + (result.b ?? []).length, 6)
  assert.deepEqual([...(result.a ?? []), ...(result.b ?? [])].sort(), [
    'refresh-0',
    'refresh-1',
    'refresh-2',
    'refresh-3',
    'refresh-4',
    'refresh-5',
  ])
})

test('a member subscribed to nothing gets no partition; the others share them evenly', () => {
  const result = assigned({ a: ['refresh'], b: ['refresh'], c: ['refresh'], zombie: [] }, ['refresh'])
  assert.deepEqual(result.zombie, [])
  for (const id of ['a', 'b', 'c']) assert.equal(result[id]?.length, 2, `${id} holds two partitions`)
})

test('members reading the same two topics stay within one partition of each other', () => {
  const result = assigned({
    a: ['customer_data', 'inventory_data'],
    b: ['customer_data', 'inventory_data'],
    c: ['customer_data', 'inventory_data'],
    d: ['customer_data', 'inventory_data'],
    e: ['customer_data', 'inventory_data'],
  })
  const sizes = Object.values(result).map((partitions) => partitions.length)
  assert.equal(
    sizes.reduce((sum, n) => sum + n, 0),
    12,
  )
  assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `balanced: ${sizes.join(', ')}`)
})

test('each topic goes only to its own readers, and the result does not depend on member order', () => {
  const one = assigned({ x: ['customer_data'], y: ['refresh'], z: ['customer_data', 'refresh'] })
  const two = assigned({ z: ['customer_data', 'refresh'], y: ['refresh'], x: ['customer_data'] })
  assert.deepEqual(one, two)
  assert.ok(one.x?.every((p) => p.startsWith('customer_data-')))
  assert.ok(one.y?.every((p) => p.startsWith('refresh-')))
  const all = Object.values(one).flat().sort()
  assert.equal(all.length, 12)
  assert.equal(new Set(all).size, 12, 'no partition is assigned twice')
})

test('a topic the cluster metadata does not know is left out', () => {
  assert.deepEqual(assigned({ a: ['missing'] }), { a: [] })
})
