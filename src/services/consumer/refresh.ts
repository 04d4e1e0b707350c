/**
 * Refresh requests, the messages between the consumer's two stages: just a view id (the key, so
 * every refresh of one view goes through one partition and its deliveries are serialized) and the
 * poll time of the change that caused it (for the end-to-end latency).
 */
import { isViewId, type ViewId } from '../../domain/views.ts'
import type { OutgoingMessage } from '../../kafka/ports.ts'

/** A refresh request as read back. */
export interface RefreshRequest {
  readonly view: ViewId
  readonly polledAt: string | undefined
  /** Set by the retry schedule: the view failed before, and its failure record is cleared on success. */
  readonly retry: boolean
}

/** The message asking stage 2 to re-evaluate `view`. */
export function refreshMessage(
  topic: string,
  view: ViewId,
  polledAt: string | undefined,
  retry = false,
): OutgoingMessage {
  return { topic, key: view, value: JSON.stringify(retry ? { polledAt, retry } : { polledAt }), headers: {} }
}

/** Reads a refresh request; undefined when the message is not one (the reason is logged by the caller). */
export function parseRefresh(key: string | null, value: Buffer | null): RefreshRequest | undefined {
  if (key === null || !isViewId(key)) return undefined
  let parsed: { polledAt?: unknown; retry?: unknown } = {}
  try {
    if (value !== null) parsed = JSON.parse(value.toString('utf8')) as typeof parsed
  } catch {
    // A refresh is only its key; a damaged value costs the latency figure, nothing else.
  }
  return {
    view: key,
    polledAt: typeof parsed.polledAt === 'string' ? parsed.polledAt : undefined,
    retry: parsed.retry === true,
  }
}
