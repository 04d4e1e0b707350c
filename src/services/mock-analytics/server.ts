/**
 * The mock Analytics HTTP service: the sink the consumer delivers merged views to in tests and in the
 * local stack. It dedupes on the Idempotency-Key like a well-behaved real sink, shows what it holds,
 * and fails on demand (fault rules) so retries, the DLQ and the circuit breaker meet a real peer.
 */
import { timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { ErrorCodes, PipelineError } from '../../errors.ts'
import { sendError } from './http.ts'
import { openJournal } from './journal.ts'
import { createRoutes, DELIVERY_PATHS, guarded, type RouteContext, type Routes } from './routes.ts'
import { MockAnalyticsStore } from './store.ts'

/** Options of {@link startMockAnalytics}. */
export interface MockAnalyticsOptions {
  /** Interface to bind; default 127.0.0.1. */
  readonly host?: string | undefined
  /** TCP port; default 0, a free port (the service passes MOCK_ANALYTICS_PORT). */
  readonly port?: number | undefined
  /** Largest accepted request body; larger ones get 413. Default {@link DEFAULT_BODY_LIMIT_BYTES}. */
  readonly bodyLimitBytes?: number | undefined
  /** When set, every request but `GET /healthz` needs `Authorization: Bearer <token>`. */
  readonly token?: string | undefined
  /**
   * A file keeping what was accepted (see `journal.ts`): read back at start, appended to per accepted
   * delivery, emptied by a reset. Default: memory only.
   */
  readonly stateFile?: string | undefined
}

/** A running mock Analytics service. */
export interface MockAnalytics {
  /** Base URL, e.g. `http://127.0.0.1:4020`; deliveries go to `${url}/analytics/data`. */
  readonly url: string
  readonly port: number
  /** The live state, for tests that inspect or reset it in-process. */
  readonly store: MockAnalyticsStore
  /** Deliveries read back from the state file at start, and lines of it that could not be. */
  readonly restored: { readonly records: number; readonly unreadable: number }
  /** Stops listening and closes every connection, keep-alive ones included, at once. */
  close(): Promise<void>
}

/** Default body limit: 1 MiB. */
export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024

/**
 * Starts the service and resolves once it listens.
 *
 * @throws {PipelineError} `PIPELINE_INFRA_PORT_BUSY` when the port is taken.
 */
export function startMockAnalytics(options: MockAnalyticsOptions = {}): Promise<MockAnalytics> {
  const host = options.host ?? '127.0.0.1'
  const journal = options.stateFile === undefined ? undefined : openJournal(options.stateFile)
  const store = new MockAnalyticsStore()
  if (journal !== undefined) {
    // Read back through the store itself (a key twice in the file is stored once), before listening.
    for (const { key, record, receivedAt } of journal.restored) {
      store.countReceived()
      store.deliver(key, record, receivedAt)
    }
    store.listen({ accepted: (stored) => journal.append(stored), reset: () => journal.truncate() })
  }
  const context: RouteContext = {
    store,
    bodyLimitBytes: options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES,
    timers: new Set(),
  }
  const authorization = options.token === undefined ? undefined : Buffer.from(`Bearer ${options.token}`)
  const server = createServer(createListener(createRoutes(context), context.store, authorization))
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EADDRINUSE') return reject(error)
      const message = `mock Analytics cannot listen on ${host}:${options.port ?? 0}: the port is in use`
      reject(new PipelineError(ErrorCodes.INFRA_PORT_BUSY, message, { cause: error, details: { host } }))
    })
    server.listen(options.port ?? 0, host, () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : (options.port ?? 0)
      let closing: Promise<void> | undefined
      const close = (): Promise<void> => {
        closing ??= new Promise<void>((done, fail) => {
          for (const timer of context.timers) clearTimeout(timer)
          context.timers.clear()
          server.close((error) => {
            journal?.close()
            if (error) fail(error)
            else done()
          })
          // close() alone waits for keep-alive clients to leave; tests want the port back now.
          server.closeAllConnections()
        })
        return closing
      }
      const shownHost = host.includes(':') ? `[${host}]` : host
      const restored = { records: journal?.restored.length ?? 0, unreadable: journal?.unreadable ?? 0 }
      resolve({ url: `http://${shownHost}:${port}`, port, store: context.store, restored, close })
    })
  })
}

/** Dispatches a request: routing table, 404/405, then the bearer token (all but `/healthz`). */
function createListener(
  routes: Routes,
  store: MockAnalyticsStore,
  authorization: Buffer | undefined,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    guarded(res, () => {
      const url = req.url ?? '/'
      const mark = url.indexOf('?')
      const path = mark === -1 ? url : url.slice(0, mark)
      const methods = routes.get(path)
      if (methods === undefined) return sendError(res, 404, `no such endpoint: ${path}`)
      const handler = methods.get(req.method ?? '')
      if (handler === undefined) {
        const allow = [...methods.keys()].join(', ')
        return sendError(res, 405, `${req.method} is not allowed on ${path}; use ${allow}`, { allow })
      }
      if (path !== '/healthz' && !isAuthorized(req, authorization)) {
        if (DELIVERY_PATHS.has(path)) {
          store.countReceived()
          store.countRejected()
        }
        return sendError(res, 401, 'missing or wrong bearer token', { 'www-authenticate': 'Bearer' })
      }
      handler(req, res, mark === -1 ? '' : url.slice(mark + 1))
    })
  }
}

function isAuthorized(req: IncomingMessage, expected: Buffer | undefined): boolean {
  if (expected === undefined) return true
  const given = req.headers.authorization
  if (given === undefined) return false
  const bytes = Buffer.from(given)
  return bytes.length === expected.length && timingSafeEqual(bytes, expected)
}
