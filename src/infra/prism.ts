/**
 * The demo's mock CRM + Inventory: Stoplight Prism serving openapi/crm-inventory.yaml with its
 * static examples (the brief's customers 1 and 2, products 100 and 200).
 */
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { type ManagedChild, spawnChild } from './child.ts'
import { projectRoot } from './paths.ts'
import { assertPortFree } from './ports.ts'
import { awaitChildReady } from './wait.ts'

/** Options of {@link startPrism}. */
export interface PrismOptions {
  readonly logDir: string
  readonly port?: number
  readonly spec?: string
  readonly readyTimeoutMs?: number
}

/** A running Prism mock. */
export interface LocalPrism {
  readonly url: string
  readonly child: ManagedChild
  stop(): Promise<void>
}

async function answers(url: string): Promise<boolean> {
  const response = await fetch(`${url}/customers`, { signal: AbortSignal.timeout(1000) })
  await response.body?.cancel()
  return response.ok
}

/**
 * Starts Prism on 127.0.0.1:`port` (default 4010) and resolves once `GET /customers` answers 200.
 *
 * @throws {PipelineError} on a busy port or a mock that is not ready within the timeout
 */
export async function startPrism(options: PrismOptions): Promise<LocalPrism> {
  const port = options.port ?? 4010
  await assertPortFree(port, 'the Prism mock API', 'PRISM_PORT to another port')
  const require = createRequire(import.meta.url)
  const bin = require.resolve('@stoplight/prism-cli/dist/index.js')
  const spec = options.spec ?? join(projectRoot, 'openapi', 'crm-inventory.yaml')
  const child = spawnChild({
    name: 'prism',
    command: process.execPath,
    // Multiprocess mode crashes under NODE_ENV=production (Prism 5.16); one process is plenty here.
    args: [bin, 'mock', '--multiprocess=false', '--host', '127.0.0.1', '--port', String(port), spec],
    // Prism's dependencies phone home unless told not to.
    env: { ...process.env, SCARF_ANALYTICS: 'false', DO_NOT_TRACK: '1' },
    logFile: join(options.logDir, 'prism.log'),
  })
  const url = `http://127.0.0.1:${port}`
  await awaitChildReady(child, () => answers(url), {
    what: `Prism on ${url}`,
    timeoutMs: options.readyTimeoutMs ?? 60_000,
    intervalMs: 200,
  })
  return { url, child, stop: () => child.stop(5000) }
}
