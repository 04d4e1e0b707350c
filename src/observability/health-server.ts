/**
 * The metrics and health endpoints of a service: `/metrics` (Prometheus text), `/healthz` (the
 * process answers) and `/readyz` (its dependencies are connected).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Registry } from 'prom-client'

/** One named readiness check. */
export type ReadinessCheck = () => boolean | Promise<boolean>

/** Options of {@link startHealthServer}. */
export interface HealthServerOptions {
  readonly host: string
  readonly port: number
  readonly registry: Registry
  readonly checks: Readonly<Record<string, ReadinessCheck>>
  /**
   * More routes (the consumer's admin API), tried before the built-in ones: returns true when it
   * took the request (and answers it), false to leave it to them.
   */
  readonly routes?: (req: IncomingMessage, res: ServerResponse) => boolean
}

/** A running health server. */
export interface HealthServer {
  readonly url: string
  close(): Promise<void>
}

async function readiness(checks: Readonly<Record<string, ReadinessCheck>>): Promise<Record<string, boolean>> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => [
      name,
      await Promise.resolve(check()).catch(() => false),
    ]),
  )
  return Object.fromEntries(entries)
}

/** Starts the server; resolves once it listens. */
export function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    const reply = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' })
      res.end(body)
    }
    if (options.routes?.(req, res)) return
    if (req.method !== 'GET') return reply(405, 'text/plain', 'method not allowed\n')
    if (path === '/metrics') {
      options.registry.metrics().then(
        (text) => reply(200, options.registry.contentType, text),
        (error: unknown) => reply(500, 'text/plain', `metrics failed: ${(error as Error).message}\n`),
      )
      return
    }
    if (path === '/healthz') return reply(200, 'application/json', '{"status":"ok"}\n')
    if (path === '/readyz') {
      readiness(options.checks).then((checks) => {
        const ready = Object.values(checks).every(Boolean)
        reply(ready ? 200 : 503, 'application/json', `${JSON.stringify({ ready, checks })}\n`)
      })
      return
    }
    reply(404, 'text/plain', 'not found: try /metrics, /healthz or /readyz\n')
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : options.port
      resolve({
        url: `http://${options.host}:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done())
            server.closeAllConnections()
          }),
      })
    })
  })
}
