/** TCP port helpers for the local launcher: refuse busy ports early, and find free ones for tests. */
import { createServer } from 'node:net'
import { ErrorCodes, PipelineError } from '../errors.ts'

/** Resolves true when nothing listens on `host:port` (we could bind it ourselves). */
export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)))
  })
}

/** Asks the kernel for a currently free port on `host`. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

/**
 * Throws a one-line error naming the port, its user and the way out when `port` is taken.
 *
 * @throws {PipelineError} `PIPELINE_INFRA_PORT_BUSY`
 */
export async function assertPortFree(port: number, what: string, envHint: string): Promise<void> {
  if (await isPortFree(port)) return
  throw new PipelineError(
    ErrorCodes.INFRA_PORT_BUSY,
    `Port ${port} for ${what} is already in use: stop whatever listens there, or set ${envHint}`,
    { details: { port, what } },
  )
}
