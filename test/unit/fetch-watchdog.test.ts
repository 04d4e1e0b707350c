import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isFetchLoopStalled } from '../../src/kafka/fetch-watchdog.ts'

const healthy = { paused: false, buffered: 0, capacity: 100, silentForMs: 0 }

test('a fetch loop silent for the whole window while it should be reading is stalled', () => {
  assert.equal(isFetchLoopStalled({ ...healthy, silentForMs: 5000 }, 5000), true)
  assert.equal(isFetchLoopStalled({ ...healthy, buffered: 99, silentForMs: 9000 }, 5000), true)
})

test('a shorter silence is not a stall', () => {
  assert.equal(isFetchLoopStalled({ ...healthy, silentForMs: 4999 }, 5000), false)
})

test('a paused stream, or one whose buffer is full (waiting on its reader), is not stalled', () => {
  assert.equal(isFetchLoopStalled({ ...healthy, paused: true, silentForMs: 60_000 }, 5000), false)
  assert.equal(isFetchLoopStalled({ ...healthy, buffered: 100, silentForMs: 60_000 }, 5000), false)
  assert.equal(isFetchLoopStalled({ ...healthy, buffered: 250, silentForMs: 60_000 }, 5000), false)
})
