/**
 * One HTTP request to Analytics over a keep-alive undici pool, turned into an {@link AttemptResult}.
 * No retries and no decisions here (see delivery.ts): every network failure, timeout and status comes
 * back as a value, so the caller decides what it means.
 */
import { Pool, errors as undiciErrors } from 'undici'
import { scrub, secretNeedles } from '../observability/redact.ts'
import type { AttemptResult } from './outcome.ts'

/** Options of {@link AnalyticsClient}. */
export interface AnalyticsClientOptions {
  /** The delivery endpoint (`ANALYTICS_URL`); its origin is also what a liveness probe GETs. */
  readonly url: string | URL
  /** The batch delivery endpoint (`ANALYTICS_BATCH_URL`), for {@link AnalyticsClient.postBatch}. */
  readonly batchUrl?: string | URL | undefined
  /** Sent as `Authorization: Bearer …`; never logged. */
  readonly token?: string | undefined
  /** Connect, headers and body timeouts, each. */
  readonly timeoutMs: number
  /** Most keep-alive connections to the origin. */
  readonly connections: number
}

/** Enough of an error body to cut it to 1 KiB on a character boundary; the rest is drained unread. */
const ERROR_BODY_PREFIX_BYTES = 4096

/** Where requests go: a pool of connections to an origin, and the path on it. */
interface Target {
  readonly pool: Pool
  readonly path: string
}

/** A pooled HTTP client for the Analytics origin. */
export class AnalyticsClient {
  readonly #delivery: Target
  /** The batch endpoint; it shares the delivery pool when it is on the same origin. */
  readonly #batch: Target | undefined
  readonly #headers: Record<string, string>
  readonly #timeoutMs: number
  /** The token as it could come back in an error body, which goes to logs and the DLQ. */
  readonly #tokenNeedles: readonly string[]

  constructor(options: AnalyticsClientOptions) {
    const url = new URL(options.url)
    this.#timeoutMs = options.timeoutMs
    const pool = (origin: string): Pool =>
      new Pool(origin, {
        connections: options.connections,
        connectTimeout: options.timeoutMs,
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
        keepAliveTimeout: 30_000,
      })
    this.#delivery = { pool: pool(url.origin), path: `${url.pathname}${url.search}` }
    if (options.batchUrl !== undefined) {
      const batch = new URL(options.batchUrl)
      this.#batch = {
        pool: batch.origin === url.origin ? this.#delivery.pool : pool(batch.origin),
        path: `${batch.pathname}${batch.search}`,
      }
    }
    this.#headers = options.token ? { authorization: `Bearer ${options.token}` } : {}
    this.#tokenNeedles = secretNeedles([options.token])
  }

  /** POSTs `body` (serialized JSON) with its idempotency key to the delivery endpoint. */
  post(key: string, body: Buffer, signal?: AbortSignal): Promise<AttemptResult> {
    return this.#send(
      this.#delivery,
      'POST',
      { ...this.#headers, 'content-type': 'application/json', 'idempotency-key': key },
      body,
      signal,
    )
  }

  /**
   * POSTs a batch body (`{ items: [{ idempotencyKey, record }] }`, serialized) to the batch endpoint.
   * Unlike {@link post}, a 2xx answer's body is read whole: it holds the per-item results.
   *
   * @throws {Error} when the client was made without `batchUrl`
   */
  postBatch(body: Buffer, signal?: AbortSignal): Promise<AttemptResult> {
    if (this.#batch === undefined) throw new Error('AnalyticsClient.postBatch needs the batchUrl option')
    return this.#send(
      this.#batch,
      'POST',
      { ...this.#headers, 'content-type': 'application/json' },
      body,
      signal,
      true,
    )
  }

  /** GETs the origin's root: a liveness check that sends no data. */
  getRoot(signal?: AbortSignal): Promise<AttemptResult> {
    return this.#send({ pool: this.#delivery.pool, path: '/' }, 'GET', this.#headers, undefined, signal)
  }

  /** Waits for requests in flight, then closes every connection. */
  async close(): Promise<void> {
    const pools = new Set([this.#delivery.pool, this.#batch?.pool])
    await Promise.all([...pools].map((pool) => pool?.close()))
  }

  async #send(
    target: Target,
    method: 'GET' | 'POST',
    headers: Record<string, string>,
    body: Buffer | undefined,
    signal: AbortSignal | undefined,
    readSuccessBody = false,
  ): Promise<AttemptResult> {
    const started = performance.now()
    const elapsed = (): number => performance.now() - started
    try {
      const response = await target.pool.request({
        method,
        path: target.path,
        headers,
        ...(body === undefined ? {} : { body }),
        ...(signal === undefined ? {} : { signal }),
      })
      const status = response.statusCode
      if (status >= 200 && status < 300) {
        if (readSuccessBody) {
          // A body cut short throws here and makes the attempt a network failure: without the
          // per-item results nothing is known, and a retry of the batch is a replay at the sink.
          const text = await response.body.text()
          return { kind: 'answered', status, body: text, retryAfter: undefined, durationMs: elapsed() }
        }
        // The answer is the acknowledgement; its body does not matter, and a failure to read it
        // cannot undo what the status already said.
        await response.body.dump().catch(() => undefined)
        return { kind: 'answered', status, body: '', retryAfter: undefined, durationMs: elapsed() }
      }
      // Some APIs echo the credentials they refused: an error body never carries our token on.
      const text = scrub(await readPrefix(response.body, ERROR_BODY_PREFIX_BYTES), this.#tokenNeedles)
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
