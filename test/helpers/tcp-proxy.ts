/**
 * A TCP proxy in front of a test peer, to take it off the network and back on the same port while
 * the peer itself (and what it holds) lives on: `down()` refuses connections and cuts open ones,
 * `up()` listens again.
 */
import { connect, createServer, type Server, type Socket } from 'node:net'

/** A running proxy to `127.0.0.1:target`. */
export interface TcpProxy {
  /** The port clients connect to; the same across `down()` and `up()`. */
  readonly port: number
  /** `http://127.0.0.1:<port>`. */
  readonly url: string
  /** Where connections go; may be set after the proxy started. */
  target: number
  /** Stops listening and destroys every open connection: connecting now fails with ECONNREFUSED. */
  down(): Promise<void>
  /** Listens again on {@link port}. */
  up(): Promise<void>
  /** Same as {@link down}, for `after` hooks. */
  close(): Promise<void>
}

/** Starts a proxy on a free port, forwarding to `target` (0 until set). */
export async function startTcpProxy(target = 0): Promise<TcpProxy> {
  const sockets = new Set<Socket>()
  let server: Server | undefined
  const track = (socket: Socket): void => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  }
  const listen = (port: number): Promise<number> => {
    const next = createServer((client) => {
      const upstream = connect(proxy.target, '127.0.0.1')
      track(client)
      track(upstream)
      client.on('error', () => upstream.destroy())
      upstream.on('error', () => client.destroy())
      client.pipe(upstream).pipe(client)
    })
    return new Promise((resolve, reject) => {
      next.once('error', reject)
      next.listen(port, '127.0.0.1', () => {
        server = next
        const address = next.address()
        resolve(typeof address === 'object' && address !== null ? address.port : port)
      })
    })
  }
  const down = async (): Promise<void> => {
    const closing = server
    server = undefined
    for (const socket of sockets) socket.destroy()
    if (closing) await new Promise<void>((resolve) => closing.close(() => resolve()))
  }
  const port = await listen(0)
  const proxy: TcpProxy = {
    port,
    url: `http://127.0.0.1:${port}`,
    target,
    down,
    async up() {
      if (server === undefined) await listen(port)
    },
    close: down,
  }
  return proxy
}
