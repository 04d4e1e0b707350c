/**
 * One GET of a source page over undici, hardened: timeouts, bounded retries with backoff and
 * `Retry-After`, a response size limit, a content-type check, conditional GET, bearer auth.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { type Dispatcher, request, errors as undiciErrors } from 'undici'
import { type BackoffPolicy, backoffDelay, classifyStatus, parseRetryAfter } from '../domain/retry-policy.ts'
import { type ErrorCode, ErrorCodes, PipelineError } from '../errors.ts'

/** Options of {@link fetchPage}. */
export interface PageRequestOptions {
  readonly dispatcher: Dispatcher
  readonly timeoutMs: number
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

/** The outcome of a page request. */
export type PageResponse =
  | {
      readonly kind: 'body'
      readonly body: unknown
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

async function attempt(url: URL, options: PageRequestOptions): Promise<PageResponse> {
  const headers: Record<string, string> = { accept: 'application/json', 'accept-encoding': 'identity' }
  if (options.token) headers.authorization = `Bearer ${options.token}`
  if (options.etag) headers['if-none-match'] = options.etag
  let response: Dispatcher.ResponseData
  try {
    response = await request(url, {
      method: 'GET',
      headers,
      dispatcher: options.dispatcher,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      ...(options.signal ? { signal: options.signal } : {}),
    })
  } catch (error) {
    throw networkFailure(error, url, options)
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
  const type = header(response.headers, 'content-type') ?? ''
  if (!/[/+]json\b/i.test(type)) {
    await response.body.dump().catch(() => undefined)
    throw new PipelineError(
      ErrorCodes.SOURCE_NOT_JSON,
      `${url.href} answered HTTP ${status} with content-type ${JSON.stringify(type)}, not JSON`,
    )
  }
  const encoding = header(response.headers, 'content-encoding')
  if (encoding && encoding !== 'identity') {
    await response.body.dump().catch(() => undefined)
    throw new PipelineError(
      ErrorCodes.SOURCE_NOT_JSON,
      `${url.href} answered with unrequested content-encoding ${encoding}`,
    )
  }
  const declared = Number(header(response.headers, 'content-length'))
  if (Number.isFinite(declared) && declared > options.maxBytes) {
    await response.body.dump().catch(() => undefined)
    throw new PipelineError(
      ErrorCodes.SOURCE_TOO_LARGE,
      `${url.href} declared ${declared} bytes, over ${options.maxBytes}`,
    )
  }
  let raw: Buffer
  try {
    raw = await readLimited(response.body, options.maxBytes, url)
  } catch (error) {
    if (error instanceof PipelineError) throw error
    throw networkFailure(error, url, options)
  }
  let body: unknown
  try {
    body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw))
  } catch (error) {
    throw new PipelineError(
      ErrorCodes.SOURCE_NOT_JSON,
      `${url.href} answered invalid JSON: ${(error as Error).message}`,
    )
  }
  return { kind: 'body', body, etag: header(response.headers, 'etag'), attempts: 1 }
}

function networkFailure(error: unknown, url: URL, options: PageRequestOptions): Error {
  if (options.signal?.aborted) {
    return new PipelineError(ErrorCodes.SOURCE_ABORTED, `request to ${url.href} was aborted`)
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
