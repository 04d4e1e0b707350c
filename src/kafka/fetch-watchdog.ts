/**
 * A watchdog over a consumer stream's fetch loop. The Kafka client fetches on its own while its
 * buffer has room and reports each answered fetch (records or none, success or error) with a `fetch`
 * event. A few of its paths end that loop without an error: a fetch whose answer never comes keeps
 * its broker marked busy (the client purges such marks only when it fetches again), and an offset
 * refresh that fails after a rebalance returns without fetching. The stream then stays open, joined
 * and silent, with lag growing: the worst way to fail, since nothing says so. The watchdog turns that
 * silence into a warning, a metric and a rejoin.
 *
 * A quieter variant answers its fetches yet never receives some assigned partition's records: seen in
 * chaos runs and in CI after a broker restart, every member joined and answering, lag standing for
 * minutes, while a new member of the same group read those records at once (the lead suspect is the
 * client's incremental fetch session). So the watchdog also compares, per assigned partition, the
 * offset the stream fetches next with the partition's end: records there that the stream does not
 * fetch for the same window are a stall too.
 *
 * And one more: a member with nothing in hand (no batch being handled, nothing buffered) while an
 * assigned partition's committed offset stays below its end for the same window. Seen in a chaos run
 * after a broker restart: the last record of a partition stayed uncommitted for minutes while the
 * check above stayed quiet (the stream's fetch position was past it, so it had been fetched, yet no
 * batch with it was ever committed). Whatever the client lost, a new member starts from the committed
 * offset and reads it.
 *
 * Not a stall: a member the group gave no partition. It fetches nothing by design (more members
 * than partitions). One cause of stalls after a broker restart turned out to be the group itself:
 * the client's assignor handed partitions to a lingering member that read nothing, or, with that
 * member as leader, to nobody; `assignor.ts` now shares partitions among the members that read them.
 */
import type { KafkaStream } from './consumer.ts'

/** What {@link isFetchLoopStalled} decides on. */
export interface FetchLoopState {
  /** Consumption paused on purpose (Analytics circuit open): no fetch is expected. */
  readonly paused: boolean
  /**
   * The group gave this member no partition (more members than partitions): the client fetches
   * nothing then, and replacing it would only make the whole group rebalance every window.
   */
  readonly unassigned?: boolean
  /** Records waiting in the stream's buffer, and how many it holds before fetching stops. */
  readonly buffered: number
  readonly capacity: number
  /** Since the last answered fetch, or since fetching was last not expected. */
  readonly silentForMs: number
}

/**
 * True when the fetch loop should be running (not paused, room in the buffer, partitions assigned)
 * and no fetch was answered for `silenceMs`. A full buffer waits on the reader, not on the broker,
 * so it is no stall.
 */
export function isFetchLoopStalled(state: FetchLoopState, silenceMs: number): boolean {
  return fetchExpected(state) && state.silentForMs >= silenceMs
}

/** Whether the client should be fetching: not paused, room in its buffer, something to read. */
function fetchExpected(state: FetchLoopState): boolean {
  return !state.paused && state.unassigned !== true && state.buffered < state.capacity
}

/** Options of {@link watchFetchLoop}. */
/**
 * Where an assigned partition stands: the offset the stream fetches next, the group's committed
 * offset (when known), and the partition's end.
 */
export interface PartitionPosition {
  readonly key: string
  readonly position: bigint
  readonly end: bigint
  readonly committed?: bigint | undefined
}

/**
 * Remembers, per assigned partition, since when records have been waiting: past an unmoving fetch
 * position, or (while the member has nothing in hand) past an unmoving committed offset. Feed it
 * every look at the positions; it forgets a partition whose offsets moved or that caught up, and a
 * wait on the committed offset at any look where the member was busy.
 */
export class StarvationTracker {
  /** Per partition with records past its fetch position: that position, and since when. */
  #unfetched = new Map<string, { readonly at: bigint; readonly since: number }>()
  /** Per partition with records past its committed offset at idle looks: that offset, and since when. */
  #unhandled = new Map<string, { readonly at: bigint; readonly since: number }>()

  /**
   * @param idle whether the member had nothing in hand for the whole look (no batch handled or
   *   finished, nothing buffered)
   * @returns the partitions whose records have waited for at least `ms`
   */
  observe(positions: readonly PartitionPosition[], now: number, ms: number, idle = false): string[] {
    const starved = new Set<string>()
    const follow = (
      known: ReadonlyMap<string, { readonly at: bigint; readonly since: number }>,
      next: Map<string, { readonly at: bigint; readonly since: number }>,
      key: string,
      at: bigint,
    ) => {
      const seen = known.get(key)
      const entry = seen !== undefined && seen.at === at ? seen : { at, since: now }
      next.set(key, entry)
      if (now - entry.since >= ms) starved.add(key)
    }
    const unfetched = new Map<string, { readonly at: bigint; readonly since: number }>()
    const unhandled = new Map<string, { readonly at: bigint; readonly since: number }>()
    for (const { key, position, end, committed } of positions) {
      if (end > position) follow(this.#unfetched, unfetched, key, position)
      // A busy look forgets these: the reader may be about to hand the records over.
      if (idle && committed !== undefined && end > committed)
        follow(this.#unhandled, unhandled, key, committed)
    }
    this.#unfetched = unfetched
    this.#unhandled = unhandled
    return [...starved]
  }

  /** Forgets everything: fetching was not expected (paused, a full buffer, or no partition assigned). */
  reset(): void {
    this.#unfetched.clear()
    this.#unhandled.clear()
  }
}

/** What a stream's reader is doing (see {@link FetchWatchOptions.activity}). */
export interface BatchActivity {
  readonly inHand: boolean
  readonly finished: number
}

/**
 * The committed offsets a member was already replaced for, per partition. A new member that finds
 * the same offset still below the end, with nothing to hand over, is not replaced again for it: the
 * records there may be ones no reader is ever handed (a transaction's control record ends a partition
 * written with Kafka transactions, and cannot be committed past until a record follows), so judging
 * them again would replace members for ever. Shared by the members of one stage, one after the other.
 */
export class ActedOffsets {
  readonly #acted = new Map<string, bigint>()

  /** Remembers the committed offsets of `starved` partitions, whose member is being replaced. */
  remember(starved: readonly PartitionPosition[]): void {
    for (const { key, committed } of starved) if (committed !== undefined) this.#acted.set(key, committed)
  }

  /** `positions` with the committed offset left out where a member was already replaced for it. */
  unjudged(positions: readonly PartitionPosition[]): PartitionPosition[] {
    return positions.map((p) =>
      p.committed !== undefined && this.#acted.get(p.key) === p.committed
        ? { ...p, committed: undefined }
        : p,
    )
  }
}

export interface FetchWatchOptions {
  /** Longest silence tolerated; it must exceed a fetch's longest legitimate wait (a rebalance). */
  readonly silenceMs: number
  /** Whether consumption is paused on purpose. */
  readonly paused: () => boolean
  /** Whether the group assigned this member no partition at all; by default it is taken to have some. */
  readonly unassigned?: () => boolean
  /**
   * Called once when the member has had no partition for `silenceMs` (again only after it had some):
   * a standby to the group, yet also what every member sees when the group's leader assigns nothing.
   */
  readonly onUnassigned?: () => void
  /**
   * The assigned partitions' positions and ends (a broker round trip); without it only silence is
   * watched. A failed look is skipped.
   */
  readonly positions?: () => Promise<readonly PartitionPosition[]>
  /**
   * What the reader has in hand: a batch being handled (and committed), and how many batches it
   * finished. Without it the committed offsets are not watched.
   */
  readonly activity?: () => BatchActivity
  /**
   * Called once, with what was seen (and, for starved partitions, where they stood), when either
   * stall is reached; the caller closes the stream and joins again.
   */
  readonly onStall: (what: string, starved?: readonly PartitionPosition[]) => void
}

/**
 * Watches `stream` until it closes or the returned function is called. The silence is counted from
 * the last answered fetch, or from the last check at which no fetch was expected (paused, the
 * buffer full, or no partition assigned), so a long pause is not mistaken for a stall when it ends.
 */
export function watchFetchLoop(stream: KafkaStream, options: FetchWatchOptions): () => void {
  let since = performance.now()
  /** Since when the member has had no partition, and whether that was reported. */
  let unassigned: { readonly since: number; reported: boolean } | undefined
  const answered = (): void => {
    since = performance.now()
  }
  const starvation = new StarvationTracker()
  let looking = false
  const lookAtPositions = (): void => {
    if (options.positions === undefined || looking) return
    looking = true
    const before = options.activity?.()
    const emptyBefore = stream.readableLength === 0
    options
      .positions()
      .then((positions) => {
        // Idle for the whole look: a batch started or finished meanwhile may have moved an offset.
        const after = options.activity?.()
        const idle =
          before !== undefined &&
          after !== undefined &&
          !before.inHand &&
          !after.inHand &&
          before.finished === after.finished &&
          emptyBefore &&
          stream.readableLength === 0
        const starved = starvation.observe(positions, performance.now(), options.silenceMs, idle)
        if (starved.length > 0 && !stopped) {
          stop()
          const seconds = Math.round(options.silenceMs / 1000)
          options.onStall(
            `records of ${starved.join(', ')} waiting for ${seconds} s, unfetched or never handed over`,
            positions.filter((p) => starved.includes(p.key)),
          )
        }
      })
      .catch(() => undefined)
      .finally(() => {
        looking = false
      })
  }
  let stopped = false
  const timer = setInterval(
    () => {
      const state: FetchLoopState = {
        paused: options.paused(),
        unassigned: options.unassigned?.() ?? false,
        buffered: stream.readableLength,
        capacity: stream.readableHighWaterMark,
        silentForMs: performance.now() - since,
      }
      if (!state.unassigned) unassigned = undefined
      else {
        unassigned ??= { since: performance.now(), reported: false }
        if (!unassigned.reported && performance.now() - unassigned.since >= options.silenceMs) {
          unassigned.reported = true
          options.onUnassigned?.()
        }
      }
      if (isFetchLoopStalled(state, options.silenceMs)) {
        stop()
        options.onStall(`no fetch answered for ${Math.round(state.silentForMs / 1000)} s`)
      } else if (!fetchExpected(state)) {
        since = performance.now()
        starvation.reset()
      } else lookAtPositions()
    },
    // Checked ten times per window: a stall is acted on within a tenth of the window after it.
    Math.max(10, Math.round(options.silenceMs / 10)),
  )
  timer.unref()
  const stop = (): void => {
    stopped = true
    clearInterval(timer)
    stream.off('fetch', answered)
    stream.off('close', stop)
  }
  stream.on('fetch', answered)
  stream.once('close', stop)
  return stop
}
