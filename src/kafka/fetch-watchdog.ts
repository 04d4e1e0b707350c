/**
 * A watchdog over a consumer stream's fetch loop. The Kafka client fetches on its own while its
 * buffer has room and reports each answered fetch (records or none, success or error) with a `fetch`
 * event. A few of its paths end that loop without an error: a fetch whose answer never comes keeps
 * its broker marked busy (the client purges such marks only when it fetches again), and an offset
 * refresh that fails after a rebalance returns without fetching. The stream then stays open, joined
 * and silent, with lag growing: the worst way to fail, since nothing says so. The watchdog turns that
 * silence into a warning, a metric and a rejoin.
 */
import type { KafkaStream } from './consumer.ts'

/** What {@link isFetchLoopStalled} decides on. */
export interface FetchLoopState {
  /** Consumption paused on purpose (Analytics circuit open): no fetch is expected. */
  readonly paused: boolean
  /** Records waiting in the stream's buffer, and how many it holds before fetching stops. */
  readonly buffered: number
  readonly capacity: number
  /** Since the last answered fetch, or since fetching was last not expected. */
  readonly silentForMs: number
}

/**
 * True when the fetch loop should be running (not paused, room in the buffer) and no fetch was
 * answered for `silenceMs`. A full buffer waits on the reader, not on the broker, so it is no stall.
 */
export function isFetchLoopStalled(state: FetchLoopState, silenceMs: number): boolean {
  return !state.paused && state.buffered < state.capacity && state.silentForMs >= silenceMs
}

/** Options of {@link watchFetchLoop}. */
export interface FetchWatchOptions {
  /** Longest silence tolerated; it must exceed a fetch's longest legitimate wait (a rebalance). */
  readonly silenceMs: number
  /** Whether consumption is paused on purpose. */
  readonly paused: () => boolean
  /** Called once, when the silence is reached; the caller closes the stream and joins again. */
  readonly onStall: (silentForMs: number) => void
}

/**
 * Watches `stream` until it closes or the returned function is called. The silence is counted from
 * the last answered fetch, or from the last check at which no fetch was expected (paused, or the
 * buffer full), so a long pause is not mistaken for a stall when it ends.
 */
export function watchFetchLoop(stream: KafkaStream, options: FetchWatchOptions): () => void {
  let since = performance.now()
  const answered = (): void => {
    since = performance.now()
  }
  const timer = setInterval(
    () => {
      const state: FetchLoopState = {
        paused: options.paused(),
        buffered: stream.readableLength,
        capacity: stream.readableHighWaterMark,
        silentForMs: performance.now() - since,
      }
      if (isFetchLoopStalled(state, options.silenceMs)) {
        stop()
        options.onStall(state.silentForMs)
      } else if (state.paused || state.buffered >= state.capacity) {
        since = performance.now()
      }
    },
    // Checked ten times per window: a stall is acted on within a tenth of the window after it.
    Math.max(10, Math.round(options.silenceMs / 10)),
  )
  timer.unref()
  const stop = (): void => {
    clearInterval(timer)
    stream.off('fetch', answered)
    stream.off('close', stop)
  }
  stream.on('fetch', answered)
  stream.once('close', stop)
  return stop
}
