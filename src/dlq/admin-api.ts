/**
 * The consumer's DLQ admin API (I/O), served on its metrics/health port and only when `ADMIN_TOKEN` is
 * set. Every request needs `Authorization: Bearer <ADMIN_TOKEN>` (compared in constant time); without
 * it the answer is 401 and nothing is read or replayed.
 *
 * - `GET /admin/dlq?stage=&since=&until=&key=&error=`: the listing of `pipeline dlq list --json`
 * - `GET /admin/dlq/<offset>`: one entry, as `pipeline dlq show --json`
 * - `POST /admin/dlq/replay` with a JSON body `{ stage, since, until, key, error, dryRun, rate }` (all
 *   optional): the replay report of `pipeline dlq replay --yes --json`
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { describeError, ErrorCodes, isPipelineError } from '../errors.ts'
import type { Logger } from '../observability/logger.ts'
import { parseFilter, type RawDlqFilter } from './filter.ts'
import type { DlqOperations } from './operations.ts'
import { parseRate } from './replay-plan.ts'

/** Largest replay request body accepted. */
const MAX_BODY_BYTES = 64 * 1024

/** The replay rate when a request names none (as the CLI's default). */
const DEFAULT_RATE = '50/s'

/** Options of {@link dlqAdminRoutes}. */
export interface AdminApiOptions {
  /** The admin token (ADMIN_TOKEN). */
  readonly token: string
  /** The operations, once the consumer has its connections; undefined while it starts. */
  readonly operations: () => DlqOperations | undefined
  readonly logger: Logger
}

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest()

/** True when `header` is `Bearer <token>`; the comparison takes the same time whatever it holds. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const given = /^Bearer\s+(.+)$/i.exec(header ?? '')?.[1]?.trim() ?? ''
  // Digests have equal lengths, so timingSafeEqual never throws and length leaks nothing.
  return timingSafeEqual(digest(given), digest(token)) && given !== ''
}

class HttpError extends Error {
  readonly status: number
  constructor(status: number, message: string) {
    super(message)
    this.status = status
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, `request body over ${MAX_BODY_BYTES} bytes`))
        req.destroy()
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

const text = (value: unknown): string | undefined =>
  typeof value === 'string' ? value : typeof value === 'number' ? String(value) : undefined

function stages(value: unknown): string[] | undefined {
  if (typeof value === 'string') return [value]
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string')
  return undefined
}

/** The filters of a replay body (same names as the CLI options and the list's query parameters). */
function bodyFilter(body: Record<string, unknown>): RawDlqFilter {
  return {
    stage: stages(body.stage),
    since: text(body.since),
    until: text(body.until),
    key: text(body.key),
    error: text(body.error),
  }
}

/**
 * The request handler of the admin API for the health server's `routes` option: takes the requests
 * under `/admin/` and leaves the others.
 */
export function dlqAdminRoutes(
  options: AdminApiOptions,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const reply = (
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers })
    res.end(`${JSON.stringify(body)}\n`)
  }

  const handle = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const ops = options.operations()
    if (ops === undefined) throw new HttpError(503, 'the consumer is still starting')
    const path = url.pathname.replace(/\/+$/, '')
    if (path === '/admin/dlq') {
      if (req.method !== 'GET') throw new HttpError(405, 'use GET')
      const query = url.searchParams
      const filter = parseFilter({
        stage: query.getAll('stage'),
        since: query.get('since') ?? undefined,
        until: query.get('until') ?? undefined,
        key: query.get('key') ?? undefined,
        error: query.get('error') ?? undefined,
      })
      return reply(res, 200, await ops.list(filter))
    }
    if (path === '/admin/dlq/replay') {
      if (req.method !== 'POST') throw new HttpError(405, 'use POST')
      const raw = await readBody(req)
      let body: unknown = {}
      try {
        if (raw.trim() !== '') body = JSON.parse(raw)
      } catch {
        throw new HttpError(400, 'the body is not JSON')
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body))
        throw new HttpError(400, 'the body must be a JSON object')
      const fields = body as Record<string, unknown>
      const filter = parseFilter(bodyFilter(fields))
      const dryRun = fields.dryRun === true
      const rate = parseRate(text(fields.rate) ?? DEFAULT_RATE)
      const prepared = await ops.prepareReplay(filter)
      const report = await ops.replay(prepared, { dryRun, ratePerSecond: rate })
      options.logger.info(
        { dryRun, selected: report.selected, counts: report.counts },
        `admin API: DLQ replay${dryRun ? ' (dry run)' : ''} of ${report.selected} entries`,
      )
      return reply(res, 200, report)
    }
    const offset = /^\/admin\/dlq\/(\d+)$/.exec(path)?.[1]
    if (offset !== undefined) {
      if (req.method !== 'GET') throw new HttpError(405, 'use GET')
      return reply(res, 200, await ops.show(offset))
    }
    throw new HttpError(404, 'not found: GET /admin/dlq, GET /admin/dlq/<offset>, POST /admin/dlq/replay')
  }

  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin.invalid')
    if (url.pathname !== '/admin' && !url.pathname.startsWith('/admin/')) return false
    if (!bearerMatches(req.headers.authorization, options.token)) {
      options.logger.warn(
        { method: req.method, path: url.pathname, remote: req.socket.remoteAddress },
        'admin API: request without a valid admin token refused',
      )
      req.resume()
      reply(
        res,
        401,
        { error: 'unauthorized: send Authorization: Bearer <ADMIN_TOKEN>' },
        { 'www-authenticate': 'Bearer' },
      )
      return true
    }
    handle(req, res, url).catch((error: unknown) => {
      const status =
        error instanceof HttpError
          ? error.status
          : isPipelineError(error, ErrorCodes.DLQ_BAD_FILTER) || isPipelineError(error, ErrorCodes.USAGE)
            ? 400
            : isPipelineError(error, ErrorCodes.DLQ_NOT_FOUND)
              ? 404
              : isPipelineError(error, ErrorCodes.DLQ_REPLAY_BUSY)
                ? 409
                : 500
      const message = error instanceof HttpError ? error.message : describeError(error)
      if (status >= 500) options.logger.error({ path: url.pathname }, `admin API: ${message}`)
      if (!res.headersSent) reply(res, status, { error: message })
      else res.end()
    })
    return true
  }
}
