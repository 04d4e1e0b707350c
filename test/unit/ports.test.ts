/** Free ports for servers started a little later: picked where outgoing connections never get theirs. */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { test } from 'node:test'
import { freePort, isPortFree } from '../../src/infra/ports.ts'

const ephemeralStart = Number(
  readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0],
)

test('freePort picks free ports below the kernel ephemeral range, which a server can then bind', async () => {
  const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()))
  for (const port of ports) {
    assert.ok(port >= 20_000 && port < ephemeralStart, `${port} lies below ${ephemeralStart}`)
    assert.equal(await isPortFree(port), true)
  }
  const server = createServer()
  await new Promise<void>((resolve) => server.listen({ port: ports[0], host: '127.0.0.1' }, resolve))
  try {
    assert.equal(await isPortFree(ports[0] as number), false, 'a bound port is not free')
  } finally {
    await new Promise((resolve) => server.close(resolve))
  }
})
