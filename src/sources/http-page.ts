/**
 * One GET of a source page over undici, hardened: timeouts, bounded retries with backoff and
 * `Retry-After`, a response size limit, a content-type check, conditional GET, bearer auth.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, type Dispatcher, request, errors as undiciErrors } from 'undici'
import { type BackoffPolicy, backoffDelay, classifyStatus, parseRetryAfter } from '../domain/retry-policy.ts'
import { type ErrorCode, ErrorCodes, oneLine, PipelineError } from '../errors.ts'

/**
 * The keep-alive HTTP agent source pages are fetched with (one per thread that scans).
 *
 * @param timeoutMs - connect timeout, as `SOURCE_TIMEOUT_MS`
 */
export function sourceAgent(timeoutMs: number): Agent {
  return new Agent({ connect: { timeout: timeoutMs }, keepAliveTimeout: 30_000, connections: 8 })
}

/** Options of {@link fetchPage}. */
export interface PageRequestOptions {
  readonly dispatcher: Dispatcher
  /** undici's connect, headers and body timeouts (the body one is per chunk). */
  readonly timeoutMs: number
  /** The whole exchange of one attempt, body included: a slow-loris body cannot hold a cycle. */
  readonly deadlineMs: number
  readonly maxBytes: number
  readonly retry: BackoffPolicy
  /** Sent as `Authorization: Bearer …`; never logged. */
  readonly token?: string | undefined
  /** Sent as `If-None-Match`. */
  readonly etag?: string | undefined
  readonly signal?: AbortSignal | undefined
  /** Told before each retry (for logs and metrics). */
  readonly onRetry?: ((info: RetryInfo) => void) | undefined
}

/** Why and when a request is retried. */
export interface RetryInfo {
  readonly attempt: number
  readonly delayMs: number
  readonly reason: string
}

/** The outcome of a page request: the body's bytes, checked for size and type but not parsed. */
export type PageResponse =
  | {
      readonly kind: 'body'
      readonly raw: Buffer
      readonly etag: string | undefined
      readonly attempts: number
    }
  | { readonly kind: 'not-modified'; readonly attempts: number }

class RetryableFailure extends Error {
  readonly code: ErrorCode
  readonly retryAfter: string | undefined
  constructor(code: ErrorCode, message: string, retryAfter?: string) {
    super(message)
    this.code = code
    this.retryAfter = retryAfter
  }
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}

async function readLimited(body: AsyncIterable<Buffer>, maxBytes: number, url: URL): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += chunk.length
    if (size > maxBytes) {
      throw new PipelineError(ErrorCodes.SOURCE_TOO_LARGE, `${url.href} answered more than ${maxBytes} bytes`)
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks, size)
}

/**
 * Checks the headers of a 2xx answer before its body is read (pure): the body must be JSON, not
 * content-encoded (we ask for `identity`, so gzip is a lie or a bomb: refused unread, and the size
 * limit stays a limit on the bytes parsed), and not declared larger than `maxBytes`.
 *
 * @returns the error that fails the page, or undefined when the body may be read
 */
export function checkResponseHeaders(
  url: URL,
  status: number,
  headers: Record<string, string | string[] | undefined>,
  maxBytes: number,
): PipelineError | undefined {
  const type = header(headers, 'content-type') ?? ''
  if (!/[/+]json\b/i.test(type)) {
    return new PipelineError(
      ErrorCodes.SOURCE_NOT_JSON,
      `${url.href} answered HTTP ${status} with content-type ${JSON.stringify(oneLine(type, 100))}, not JSON`,
    )
  }
  const encoding = header(headers, 'content-encoding')
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity' && encoding.trim() !== '') {
    return new PipelineError(
      ErrorCodes.SOURCE_BAD_ENCODING,
      `${url.href} answered with content-encoding ${JSON.stringify(oneLine(encoding, 100))}, though only identity was accepted`,
    )
  }
  const declared = Number(header(headers, 'content-length'))
  if (Number.isFinite(declared) && declared > maxBytes) {
    return new PipelineError(
      ErrorCodes.SOURCE_TOO_LARGE,
      `${url.href} declared ${declared} bytes, over ${maxBytes}`,
    )
  }
  return undefined
}

async function attempt(url: URL, options: PageRequestOptions): Promise<PageResponse> {
  const headers: Record<string, string> = { accept: 'application/json', 'accept-encoding': 'identity' }
  if (options.token) headers.authorization = `Bearer ${options.token}`
  if (options.etag) headers['if-none-match'] = options.etag
  // undici's timeouts are per phase and per body chunk: a slow-loris body that trickles a byte
  // every few seconds never trips them. The deadline bounds the whole exchange, body included.
  const deadline = AbortSignal.timeout(options.deadlineMs)
  const signal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline
  const fail = (error: unknown) => networkFailure(error, url, options, deadline)
  let response: Dispatcher.ResponseData
  try {
    response = await request(url, {
      method: 'GET',
      headers,
      dispatcher: options.dispatcher,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      signal,
    })
  } catch (error) {
    throw fail(error)
  }
  const status = response.statusCode
  const kind = classifyStatus(status)
  if (kind !== 'success') {
    await response.body.dump().catch(() => undefined)
    if (kind === 'not-modified') return { kind: 'not-modified', attempts: 1 }
    const message = `${url.href} answered HTTP ${status}`
    if (kind === 'retryable') {
      throw new RetryableFailure(
        ErrorCodes.SOURCE_HTTP_STATUS,
        message,
        header(response.headers, 'retry-after'),
      )
    }
    throw new PipelineError(ErrorCodes.SOURCE_HTTP_STATUS, message, { details: { status } })
  }
  const refused = checkResponseHeaders(url, status, response.headers, options.maxBytes)
  if (refused) {
    await response.body.dump().catch(() => undefined)
    throw refused
  }
  let raw: Buffer
  try {
    raw = await readLimited(response.body, options.maxBytes, url)
  } catch (error) {
    if (error instanceof PipelineError) {
      response.body.destroy()
      throw error
    }
    throw fail(error)
  }
  return { kind: 'body', raw, etag: header(response.headers, 'etag'), attempts: 1 }
}

function networkFailure(error: unknown, url: URL, options: PageRequestOptions, deadline: AbortSignal): Error {
  if (options.signal?.aborted) {
    return new PipelineError(ErrorCodes.SOURCE_ABORTED, `request to ${url.href} was aborted`)
  }
  if (deadline.aborted) {
    return new RetryableFailure(
      ErrorCodes.SOURCE_DEADLINE,
      `${url.href} did not complete its answer within ${options.deadlineMs} ms (SOURCE_REQUEST_DEADLINE_MS)`,
    )
  }
  if (
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError ||
    error instanceof undiciErrors.ConnectTimeoutError
  ) {
    return new RetryableFailure(
      ErrorCodes.SOURCE_TIMEOUT,
      `${url.href} did not answer within ${options.timeoutMs} ms`,
    )
  }
  const code = (error as { code?: string }).code
  return new RetryableFailure(
    ErrorCodes.SOURCE_NETWORK,
    `${url.href} could not be reached: ${code ?? (error as Error).message ?? String(error)}`,
  )
}

/**
 * GETs one page, retrying network errors, timeouts, 408, 429 and 5xx with exponential backoff and
 * full jitter (or the server's `Retry-After`, capped), at most `retry.maxAttempts` times in all.
 *
 * @throws {PipelineError} a `PIPELINE_SOURCE_*` code naming the URL and what went wrong
 */
export async function fetchPage(url: URL, options: PageRequestOptions): Promise<PageResponse> {
  for (let attemptNo = 1; ; attemptNo++) {
    try {
      const result = await attempt(url, options)
      return { ...result, attempts: attemptNo }
    } catch (error) {
      if (!(error instanceof RetryableFailure)) throw error
      if (attemptNo >= options.retry.maxAttempts) {
        throw new PipelineError(error.code, `${error.message} (gave up after ${attemptNo} attempts)`)
      }
      const delayMs =
        parseRetryAfter(error.retryAfter, Date.now(), options.retry.maxDelayMs) ??
        backoffDelay(options.retry, attemptNo, Math.random())
      options.onRetry?.({ attempt: attemptNo, delayMs, reason: error.message })
      try {
        await sleep(delayMs, undefined, { signal: options.signal })
      } catch {
        throw new PipelineError(ErrorCodes.SOURCE_ABORTED, `request to ${url.href} was aborted`)
      }
    }
  }
}
