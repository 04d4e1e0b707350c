/**
 * Refresh requests, the messages between the consumer's two stages: a view id (the key, so every
 * refresh of one view goes through one partition and its deliveries are serialized), the poll time
 * of the change that caused it (for the end-to-end latency) and the view clock after the writes
 * that caused it (`seq`, see `ViewClock`: stage 2 skips a request an earlier evaluation covered).
 */
import { isViewId, type ViewId } from '../../domain/views.ts'
import type { OutgoingMessage } from '../../kafka/ports.ts'

/** A refresh request as read back. */
export interface RefreshRequest {
  readonly view: ViewId
  readonly polledAt: string | undefined
  /** Set by the retry schedule: the view failed before, and its failure record is cleared on success. */
  readonly retry: boolean
  /** The view clock after the writes that caused the request; undefined: always evaluate. */
  readonly seq: number | undefined
}

/**
 * The message asking stage 2 to re-evaluate `view`. Without `seq` it is always evaluated (retry
 * rounds, DLQ replays: they must act even on a view whose state did not change).
 */
export function refreshMessage(
  topic: string,
  view: ViewId,
  polledAt: string | undefined,
  options: { readonly retry?: boolean; readonly seq?: number } = {},
): OutgoingMessage {
  const value = { polledAt, ...(options.retry ? { retry: true } : {}), seq: options.seq }
  return { topic, key: view, value: JSON.stringify(value), headers: {} }
}

/** Reads a refresh request; undefined when the message is not one (the reason is logged by the caller). */
export function parseRefresh(key: string | null, value: Buffer | null): RefreshRequest | undefined {
  if (key === null || !isViewId(key)) return undefined
  let parsed: { polledAt?: unknown; retry?: unknown; seq?: unknown } = {}
  try {
    if (value !== null) parsed = JSON.parse(value.toString('utf8')) as typeof parsed
  } catch {
    // A refresh is only its key; a damaged value costs the latency figure and the skip, nothing else.
  }
  return {
    view: key,
    polledAt: typeof parsed.polledAt === 'string' ? parsed.polledAt : undefined,
    retry: parsed.retry === true,
    // Anything but a positive whole number is no stamp: evaluated, never wrongly skipped.
    seq: Number.isSafeInteger(parsed.seq) && (parsed.seq as number) > 0 ? (parsed.seq as number) : undefined,
  }
}
