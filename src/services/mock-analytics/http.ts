/**
 * The small HTTP plumbing of the mock Analytics service on bare `node:http`: reading a bounded body and
 * answering JSON. Kept callback-based and allocation-light, because the hot path runs once per
 * delivery and the service must take well over 10,000 of them a second.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http'

const JSON_TYPE = 'application/json; charset=utf-8'

/**
 * Reads a whole request body of at most `limit` bytes. Calls `done` once, with the body, or with
 * `undefined` when it is larger than the limit (the rest is not read: answer and close).
 */
export function readBody(
  req: IncomingMessage,
  limit: number,
  done: (body: Buffer | undefined) => void,
): void {
  const declared = req.headers['content-length']
  if (declared !== undefined && Number(declared) > limit) {
    done(undefined)
    return
  }
  let first: Buffer | undefined
  let chunks: Buffer[] | undefined
  let size = 0
  const onData = (chunk: Buffer): void => {
    size += chunk.length
    if (size > limit) {
      req.off('data', onData)
      req.off('end', onEnd)
      req.pause()
      done(undefined)
      return
    }
    // Most bodies arrive in one chunk: keep it as is and concatenate only when a second one comes.
    if (first === undefined) first = chunk
    else if (chunks === undefined) chunks = [first, chunk]
    else chunks.push(chunk)
  }
  const onEnd = (): void => {
    done(chunks === undefined ? (first ?? EMPTY) : Buffer.concat(chunks, size))
  }
  req.on('data', onData)
  req.on('end', onEnd)
}

const EMPTY = Buffer.alloc(0)

/** A JSON answer serialized once, ahead of time (the hot path's answers). */
export interface PreparedBody {
  readonly text: string
  readonly length: string
}

/** Prepares a JSON body once, for {@link sendPrepared}. */
export function prepared(value: unknown): PreparedBody {
  const text = JSON.stringify(value)
  return { text, length: String(Buffer.byteLength(text)) }
}

/**
 * Answers a prepared body. A string body, unlike a Buffer, lets node send it in the same write as the
 * headers: one syscall per answer instead of a writev of two.
 */
export function sendPrepared(res: ServerResponse, status: number, body: PreparedBody): void {
  res.writeHead(status, ['content-type', JSON_TYPE, 'content-length', body.length])
  res.end(body.text)
}

/** Answers `value` as JSON. */
export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: OutgoingHttpHeaders = {},
): void {
  const body = JSON.stringify(value)
  res.writeHead(status, { ...headers, 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

/** Answers `{ error }`, the one error shape every endpoint uses. */
export function sendError(
  res: ServerResponse,
  status: number,
  message: string,
  headers: OutgoingHttpHeaders = {},
): void {
  sendJson(res, status, { error: message }, headers)
}
