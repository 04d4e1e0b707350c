/**
 * One HTTP request to Analytics over a keep-alive undici pool, turned into an {@link AttemptResult}.
 * No retries and no decisions here (see delivery.ts): every network failure, timeout and status comes
 * back as a value, so the caller decides what it means.
 */
import { Pool, errors as undiciErrors } from 'undici'
import type { AttemptResult } from './outcome.ts'

/** Options of {@link AnalyticsClient}. */
export interface AnalyticsClientOptions {
  /** The delivery endpoint (`ANALYTICS_URL`); its origin is also what a liveness probe GETs. */
  readonly url: string | URL
  /** Sent as `Authorization: Bearer …`; never logged. */
  readonly token?: string | undefined
  /** Connect, headers and body timeouts, each. */
  readonly timeoutMs: number
  /** Most keep-alive connections to the origin. */
  readonly connections: number
}

/** Enough of an error body to cut it to 1 KiB on a character boundary; the rest is drained unread. */
const ERROR_BODY_PREFIX_BYTES = 4096

/** A pooled HTTP client for the Analytics origin. */
export class AnalyticsClient {
  readonly #pool: Pool
  readonly #path: string
  readonly #headers: Record<string, string>
  readonly #timeoutMs: number

  constructor(options: AnalyticsClientOptions) {
    const url = new URL(options.url)
    this.#path = `${url.pathname}${url.search}`
    this.#timeoutMs = options.timeoutMs
    this.#pool = new Pool(url.origin, {
      connections: options.connections,
      connectTimeout: options.timeoutMs,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      keepAliveTimeout: 30_000,
    })
    this.#headers = options.token ? { authorization: `Bearer ${options.token}` } : {}
  }

  /** POSTs `body` (serialized JSON) with its idempotency key to the delivery endpoint. */
  post(key: string, body: Buffer, signal?: AbortSignal): Promise<AttemptResult> {
    return this.#send(
      'POST',
      this.#path,
      { ...this.#headers, 'content-type': 'application/json', 'idempotency-key': key },
      body,
      signal,
    )
  }

  /** GETs the origin's root: a liveness check that sends no data. */
  getRoot(signal?: AbortSignal): Promise<AttemptResult> {
    return this.#send('GET', '/', this.#headers, undefined, signal)
  }

  /** Waits for requests in flight, then closes every connection. */
  close(): Promise<void> {
    return this.#pool.close()
  }

  async #send(
    method: 'GET' | 'POST',
    path: string,
    headers: Record<string, string>,
    body: Buffer | undefined,
    signal: AbortSignal | undefined,
  ): Promise<AttemptResult> {
    const started = performance.now()
    const elapsed = (): number => performance.now() - started
    try {
      const response = await this.#pool.request({
        method,
        path,
        headers,
        ...(body === undefined ? {} : { body }),
        ...(signal === undefined ? {} : { signal }),
      })
      const status = response.statusCode
      if (status >= 200 && status < 300) {
        // The answer is the acknowledgement; its body does not matter, and a failure to read it
        // cannot undo what the status already said.
        await response.body.dump().catch(() => undefined)
        return { kind: 'answered', status, body: '', retryAfter: undefined, durationMs: elapsed() }
      }
      const text = await readPrefix(response.body, ERROR_BODY_PREFIX_BYTES)
      const retryAfter = response.headers['retry-after']
      return {
        kind: 'answered',
        status,
        body: text,
        retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
        durationMs: elapsed(),
      }
    } catch (error) {
      if (signal?.aborted) return { kind: 'aborted', durationMs: elapsed() }
      return failureOf(error, this.#timeoutMs, elapsed())
    }
  }
}

/** Classifies a thrown request error; argument errors are bugs and are thrown on. */
function failureOf(error: unknown, timeoutMs: number, durationMs: number): AttemptResult {
  if (error instanceof undiciErrors.InvalidArgumentError) throw error
  if (error instanceof undiciErrors.ClientClosedError || error instanceof undiciErrors.ClientDestroyedError) {
    throw error
  }
  if (
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError ||
    error instanceof undiciErrors.ConnectTimeoutError
  ) {
    return { kind: 'timeout', message: `no answer within ${timeoutMs} ms`, durationMs }
  }
  const code = (error as { code?: unknown }).code
  const text = error instanceof Error ? error.message : String(error)
  const message = typeof code === 'string' && !text.includes(code) ? `${code}: ${text}` : text
  return { kind: 'network', message, durationMs }
}

/** Reads up to `maxBytes` of a body as UTF-8 and drains the rest, so the connection stays reusable. */
async function readPrefix(body: AsyncIterable<Buffer>, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of body) {
      if (size >= maxBytes) continue
      chunks.push(chunk)
      size += chunk.length
    }
  } catch {
    // A body cut short still tells something; the status is what matters.
  }
  return Buffer.concat(chunks).subarray(0, maxBytes).toString('utf8')
}
