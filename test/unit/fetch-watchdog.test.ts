import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { KafkaStream } from '../../src/kafka/consumer.ts'
import {
  ActedOffsets,
  isFetchLoopStalled,
  type PartitionPosition,
  StarvationTracker,
  watchFetchLoop,
} from '../../src/kafka/fetch-watchdog.ts'

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

test('a member the group gave no partition (more members than partitions) is not stalled by its silence', () => {
  assert.equal(isFetchLoopStalled({ ...healthy, unassigned: true, silentForMs: 60_000 }, 5000), false)
  assert.equal(isFetchLoopStalled({ ...healthy, unassigned: false, silentForMs: 5000 }, 5000), true)
})

test('the watchdog leaves a member without partitions alone, and counts silence from when it gets some', async () => {
  const stream = Object.assign(new EventEmitter(), { readableLength: 0, readableHighWaterMark: 100 })
  let unassigned = true
  const stalls: string[] = []
  let standby = 0
  const stop = watchFetchLoop(stream as unknown as KafkaStream, {
    silenceMs: 200,
    paused: () => false,
    unassigned: () => unassigned,
    onUnassigned: () => {
      standby++
    },
    onStall: (what) => stalls.push(what),
  })
  try {
    await sleep(500)
    assert.deepEqual(stalls, [], 'no fetch is expected without partitions')
    assert.equal(standby, 1, 'told once that the member has had no partition for the window')
    unassigned = false
    await sleep(120)
    assert.deepEqual(stalls, [], 'the silence before the assignment does not count')
    await sleep(300)
    assert.equal(stalls.length, 1, 'silent with partitions for the whole window')
    assert.match(stalls[0] ?? '', /^no fetch answered for/)
  } finally {
    stop()
  }
})

test('a partition whose records wait past an unmoving fetch position for the window is starved', () => {
  const tracker = new StarvationTracker()
  const at = (position: bigint, end: bigint) => [{ key: 'refresh:1', position, end }]
  assert.deepEqual(tracker.observe(at(341n, 364n), 0, 5000), [])
  assert.deepEqual(tracker.observe(at(341n, 364n), 4999, 5000), [], 'not yet for the whole window')
  assert.deepEqual(
    tracker.observe(at(341n, 380n), 5000, 5000),
    ['refresh:1'],
    'more records arriving change nothing',
  )
})

test('a moving position, a caught-up partition or a reset starts the window again', () => {
  const tracker = new StarvationTracker()
  const at = (position: bigint, end: bigint) => [{ key: 'refresh:1', position, end }]
  tracker.observe(at(341n, 364n), 0, 5000)
  assert.deepEqual(tracker.observe(at(350n, 364n), 4000, 5000), [])
  assert.deepEqual(tracker.observe(at(350n, 364n), 8999, 5000), [], 'the window restarted when it moved')
  assert.deepEqual(tracker.observe(at(364n, 364n), 20_000, 5000), [], 'everything fetched')
  tracker.observe(at(364n, 400n), 20_000, 5000)
  tracker.reset()
  assert.deepEqual(
    tracker.observe(at(364n, 400n), 26_000, 5000),
    [],
    'forgotten while fetching was not expected',
  )
})

test('the watchdog replaces a member whose fetches are answered but whose partition stays starved', async () => {
  // A stream that answers fetches all along, while one partition's records never arrive.
  const stream = Object.assign(new EventEmitter(), { readableLength: 0, readableHighWaterMark: 100 })
  const answering = setInterval(() => stream.emit('fetch'), 5)
  const stalls: string[] = []
  try {
    watchFetchLoop(stream as unknown as KafkaStream, {
      silenceMs: 200,
      paused: () => false,
      positions: async () => [{ key: 'pipeline_view_refresh:4', position: 195n, end: 210n }],
      onStall: (what) => stalls.push(what),
    })
    await sleep(600)
    assert.deepEqual(stalls, [
      'records of pipeline_view_refresh:4 waiting for 0 s, unfetched or never handed over',
    ])
  } finally {
    clearInterval(answering)
  }
})

test('records fetched but left uncommitted while the member has nothing in hand are starved', () => {
  const tracker = new StarvationTracker()
  // The stream's position is past the last record (fetched), the group's offset below it.
  const at = (committed: bigint) => [{ key: 'refresh:4', position: 245n, end: 245n, committed }]
  assert.deepEqual(tracker.observe(at(244n), 0, 5000, true), [])
  assert.deepEqual(tracker.observe(at(244n), 5000, 5000, true), ['refresh:4'])
})

test('an uncommitted record is no stall while the member is busy, or once the offset moves', () => {
  const tracker = new StarvationTracker()
  const at = (committed: bigint | undefined) => [{ key: 'refresh:4', position: 245n, end: 245n, committed }]
  tracker.observe(at(244n), 0, 5000, true)
  assert.deepEqual(tracker.observe(at(244n), 3000, 5000, false), [], 'a batch in hand')
  assert.deepEqual(tracker.observe(at(244n), 7000, 5000, true), [], 'the window restarted after it')
  assert.deepEqual(tracker.observe(at(245n), 20_000, 5000, true), [], 'committed: caught up')
  tracker.observe(at(244n), 20_000, 5000, true)
  assert.deepEqual(tracker.observe(at(244n), 24_000, 5000, true), [])
  assert.deepEqual(tracker.observe(at(244n), 25_000, 5000, true), ['refresh:4'])
  assert.deepEqual(
    tracker.observe(at(undefined), 40_000, 5000, true),
    [],
    'nothing committed yet: not judged',
  )
})

test('the watchdog replaces an idle member whose partition keeps a fetched record uncommitted', async () => {
  const stream = Object.assign(new EventEmitter(), { readableLength: 0, readableHighWaterMark: 100 })
  const answering = setInterval(() => stream.emit('fetch'), 5)
  const watch = (inHand: boolean) => {
    const stalls: string[] = []
    const where: PartitionPosition[] = []
    const stop = watchFetchLoop(stream as unknown as KafkaStream, {
      silenceMs: 200,
      paused: () => false,
      positions: async () => [{ key: 'pipeline_view_refresh:4', position: 245n, end: 245n, committed: 244n }],
      activity: () => ({ inHand, finished: 7 }),
      onStall: (what, starved = []) => {
        stalls.push(what)
        where.push(...starved)
      },
    })
    return { stalls, where, stop }
  }
  try {
    const idle = watch(false)
    const busy = watch(true)
    await sleep(600)
    busy.stop()
    assert.deepEqual(idle.stalls, [
      'records of pipeline_view_refresh:4 waiting for 0 s, unfetched or never handed over',
    ])
    assert.deepEqual(busy.stalls, [], 'a member handling a batch is left alone')
    assert.deepEqual(
      idle.where,
      [{ key: 'pipeline_view_refresh:4', position: 245n, end: 245n, committed: 244n }],
      'where the starved partition stood',
    )
  } finally {
    clearInterval(answering)
  }
})

test('records left unfetched are starved whether the member is idle or busy at each look', () => {
  const tracker = new StarvationTracker()
  // Other partitions keep the member alternating between a batch in hand and none.
  const at = [{ key: 'refresh:1', position: 341n, end: 364n, committed: 341n }]
  assert.deepEqual(tracker.observe(at, 0, 5000, true), [])
  assert.deepEqual(tracker.observe(at, 2000, 5000, false), [])
  assert.deepEqual(tracker.observe(at, 4000, 5000, true), [])
  assert.deepEqual(tracker.observe(at, 5000, 5000, false), ['refresh:1'])
})

test('a committed offset a member was replaced for is not judged again: the next member keeps it', () => {
  const acted = new ActedOffsets()
  const stuck = { key: 'customer_data:2', position: 90n, end: 90n, committed: 89n }
  const other = { key: 'customer_data:0', position: 10n, end: 12n, committed: 10n }
  assert.deepEqual(acted.unjudged([stuck, other]), [stuck, other], 'nothing acted on yet')
  acted.remember([stuck])
  assert.deepEqual(acted.unjudged([stuck, other]), [{ ...stuck, committed: undefined }, other])
  const tracker = new StarvationTracker()
  tracker.observe(acted.unjudged([stuck]), 0, 5000, true)
  assert.deepEqual(tracker.observe(acted.unjudged([stuck]), 60_000, 5000, true), [], 'not replaced again')
  const moved = { ...stuck, end: 95n, committed: 92n }
  assert.deepEqual(acted.unjudged([moved]), [moved], 'a later offset is judged anew')
})
