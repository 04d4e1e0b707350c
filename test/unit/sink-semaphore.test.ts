import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Semaphore } from '../../src/sinks/semaphore.ts'

test('hands out at most its permits and serves waiters in order', async () => {
  const slots = new Semaphore(2)
  const a = await slots.acquire()
  const b = await slots.acquire()
  assert.equal(slots.available, 0)
  const order: string[] = []
  const c = slots.acquire().then((release) => {
    order.push('c')
    return release
  })
  const d = slots.acquire().then((release) => {
    order.push('d')
    return release
  })
  assert.equal(slots.waiting, 2)
  a()
  a() // a second release of the same slot does nothing
  const releaseC = await c
  assert.equal(slots.waiting, 1)
  b()
  const releaseD = await d
  assert.deepEqual(order, ['c', 'd'])
  releaseC()
  releaseD()
  assert.equal(slots.available, 2)
})

test('a waiter that aborts leaves the queue and gets the reason', async () => {
  const slots = new Semaphore(1)
  const held = await slots.acquire()
  const controller = new AbortController()
  const waiting = slots.acquire(controller.signal)
  controller.abort(new Error('gave up'))
  await assert.rejects(waiting, /gave up/)
  assert.equal(slots.waiting, 0)
  held()
  assert.equal(slots.available, 1)
  await assert.rejects(slots.acquire(AbortSignal.abort(new Error('already'))), /already/)
  assert.equal(slots.available, 1)
  assert.throws(() => new Semaphore(0), RangeError)
})

test('cancelWaiting turns every waiter away and leaves granted slots alone', async () => {
  const slots = new Semaphore(1)
  const held = await slots.acquire()
  const first = slots.acquire()
  const second = slots.acquire(new AbortController().signal)
  slots.cancelWaiting(new Error('circuit open'))
  await assert.rejects(first, /circuit open/)
  await assert.rejects(second, /circuit open/)
  assert.equal(slots.waiting, 0)
  held()
  assert.equal(slots.available, 1)
})
