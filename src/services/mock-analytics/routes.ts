/**
 * The endpoints of the mock Analytics service: deliveries (single and batch), what the sink holds, and
 * the control endpoints tests use to inject faults or start afresh. Authentication and dispatch live
 * in server.ts; this module only says what each endpoint does.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FaultRule } from './faults.ts'
import { prepared, readBody, sendError, sendJson, sendPrepared } from './http.ts'
import {
  parseBatch,
  parseFaultRule,
  parseIdempotencyKey,
  parseJson,
  parsePage,
  parseRecord,
} from './protocol.ts'
import type { MockAnalyticsStore } from './store.ts'

/** An endpoint's handler; `query` is the URL's query string without '?'. */
export type Handler = (req: IncomingMessage, res: ServerResponse, query: string) => void

/** Path → method → handler. */
export type Routes = ReadonlyMap<string, ReadonlyMap<string, Handler>>

/** What the endpoints share. */
export interface RouteContext {
  readonly store: MockAnalyticsStore
  readonly bodyLimitBytes: number
  /** Timers of delayed answers, cleared on close so a pending delay cannot hold the process open. */
  readonly timers: Set<NodeJS.Timeout>
}

/** The paths whose POSTs are deliveries, counted as received even when authentication fails. */
export const DELIVERY_PATHS: ReadonlySet<string> = new Set(['/analytics/data', '/analytics/data/batch'])

const ACCEPTED = prepared({ status: 'accepted' })
const REPLAY = prepared({ status: 'replay' })
const HEALTHY = prepared({ status: 'ok' })

/** Runs `fn`, answering 500 instead of crashing the process when it throws. */
export function guarded(res: ServerResponse, fn: () => void): void {
  try {
    fn()
  } catch (error) {
    if (res.headersSent) res.destroy()
    else sendError(res, 500, `internal error: ${error instanceof Error ? error.message : String(error)}`)
  }
}

/** Builds the routing table of every endpoint. */
export function createRoutes(context: RouteContext): Routes {
  const { store } = context

  /**
   * Reads the body, then hands it to `use`, or answers 413. A delivery is counted once its body is in,
   * so that an oversized one still counts as received (and rejected).
   */
  const withBody = (req: IncomingMessage, res: ServerResponse, use: (body: Buffer) => void): void => {
    readBody(req, context.bodyLimitBytes, (body) => {
      guarded(res, () => {
        if (body !== undefined) return use(body)
        if (DELIVERY_PATHS.has(req.url ?? '')) {
          store.countReceived()
          store.countRejected()
        }
        // The rest of the oversized body stays unread, so this connection cannot carry another request.
        sendError(res, 413, `request body larger than ${context.bodyLimitBytes} bytes`, {
          connection: 'close',
        })
      })
    })
  }

  const reject = (res: ServerResponse, deliveries: number, status: number, message: string): void => {
    store.countRejected(deliveries)
    sendError(res, status, message)
  }

  /** Applies the fault rule that matched `deliveries` deliveries; `proceed` processes them normally. */
  const applyFault = (
    res: ServerResponse,
    fault: FaultRule,
    deliveries: number,
    proceed: () => void,
  ): void => {
    const act = (): void => {
      if (fault.drop === true) {
        store.countRejected(deliveries)
        res.destroy()
      } else if (fault.status !== undefined) {
        const headers = fault.retryAfter === undefined ? {} : { 'retry-after': String(fault.retryAfter) }
        store.countRejected(deliveries)
        sendError(res, fault.status, `injected fault: status ${fault.status}`, headers)
      } else proceed()
    }
    if (fault.delayMs === undefined || fault.delayMs === 0) {
      act()
      return
    }
    const timer = setTimeout(() => {
      context.timers.delete(timer)
      guarded(res, act)
    }, fault.delayMs)
    context.timers.add(timer)
  }

  const postOne: Handler = (req, res) => {
    withBody(req, res, (body) => {
      store.countReceived()
      const key = parseIdempotencyKey(req.headers['idempotency-key'])
      if (!key.ok) return reject(res, 1, 400, key.error)
      const record = parseRecord(body)
      if (!record.ok) return reject(res, 1, 400, record.error)
      const deliver = (): void => {
        const outcome = store.deliver(key.value, record.value)
        sendPrepared(res, 200, outcome === 'accepted' ? ACCEPTED : REPLAY)
      }
      const fault = store.faults.take([key.value])
      if (fault === undefined) deliver()
      else applyFault(res, fault, 1, deliver)
    })
  }

  const postBatch: Handler = (req, res) => {
    withBody(req, res, (body) => {
      const json = parseJson(body)
      const batch = json.ok ? parseBatch(json.value) : json
      if (!batch.ok) {
        store.countReceived()
        return reject(res, 1, 400, batch.error)
      }
      const items = batch.value
      store.countBatch()
      store.countReceived(items.length)
      const deliver = (): void => {
        const results = items.map((item) => ({
          idempotencyKey: item.idempotencyKey,
          status: store.deliver(item.idempotencyKey, item.record),
        }))
        sendJson(res, 200, { results })
      }
      const fault = store.faults.take(items.map((item) => item.idempotencyKey))
      if (fault === undefined) deliver()
      else applyFault(res, fault, items.length, deliver)
    })
  }

  const getRecords: Handler = (_req, res, query) => {
    const page = parsePage(query)
    if (!page.ok) return sendError(res, 400, page.error)
    const { offset, limit } = page.value
    sendJson(res, 200, { total: store.recordCount, offset, limit, records: store.records(offset, limit) })
  }

  const postFault: Handler = (req, res) => {
    withBody(req, res, (body) => {
      const json = parseJson(body)
      const rule = json.ok ? parseFaultRule(json.value) : json
      if (!rule.ok) return sendError(res, 400, rule.error)
      sendJson(res, 201, store.faults.add(rule.value))
    })
  }

  const postReset: Handler = (_req, res) => {
    store.reset()
    sendJson(res, 200, { reset: true })
  }

  const only = (method: string, handler: Handler): ReadonlyMap<string, Handler> =>
    new Map([[method, handler]])
  return new Map([
    ['/analytics/data', only('POST', postOne)],
    ['/analytics/data/batch', only('POST', postBatch)],
    [
      '/analytics/views',
      only('GET', (_req, res) => sendJson(res, 200, { views: Object.fromEntries(store.views()) })),
    ],
    ['/analytics/records', only('GET', getRecords)],
    ['/analytics/stats', only('GET', (_req, res) => sendJson(res, 200, store.stats()))],
    [
      '/control/faults',
      new Map<string, Handler>([
        ['GET', (_req, res) => sendJson(res, 200, { rules: store.faults.list() })],
        ['POST', postFault],
        ['DELETE', (_req, res) => sendJson(res, 200, { cleared: store.faults.clear() })],
      ]),
    ],
    ['/control/reset', only('POST', postReset)],
    ['/healthz', only('GET', (_req, res) => sendPrepared(res, 200, HEALTHY))],
  ])
}
