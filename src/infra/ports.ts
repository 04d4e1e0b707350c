/** TCP port helpers for the local launcher: refuse busy ports early, and find free ones for tests. */
import { randomInt } from 'node:crypto'
import { readFileSync } from 'node:fs'
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

/** Lowest port {@link freePort} picks from. */
const PICK_FROM = 20_000

/**
 * Ports {@link freePort} considered in this process: never handed out twice (their servers may not
 * have bound yet).
 */
const handedOut = new Set<number>()

/**
 * The first port of the kernel's ephemeral range (Linux: `ip_local_port_range`), from which it gives
 * outgoing connections their local port; 32768, Linux's default, where it cannot be read.
 */
function ephemeralStart(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])
    return Number.isInteger(low) && low > 0 ? low : 32_768
  } catch {
    return 32_768
  }
}

/**
 * A currently free port on `host`, for a server that binds it a little later. Picked below the
 * kernel's ephemeral range: a port from that range can be handed to an outgoing connection between
 * the pick and the bind (a CI run lost its broker so: "Address already in use" on a port picked for
 * it, while Redis and Prism were being started and probed). Taken from the kernel when no port below
 * the range is free.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const below = ephemeralStart() - PICK_FROM
  for (let attempt = 0; below > 0 && attempt < 100; attempt++) {
    const port = PICK_FROM + randomInt(below)
    if (handedOut.has(port)) continue
    // Taken before the check: two picks in flight at once must not both settle on it.
    handedOut.add(port)
    if (await isPortFree(port, host)) return port
  }
  return kernelPort(host)
}

/** Asks the kernel for a currently free port on `host` (one of its ephemeral range). */
function kernelPort(host: string): Promise<number> {
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
