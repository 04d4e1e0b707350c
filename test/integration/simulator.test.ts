import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { Agent, request } from 'undici'
import type { PagingStyle } from '../../src/simulator/paging.ts'
import { type SourceSimulator, startSourceSimulator } from '../../src/simulator/server.ts'

type Item = { id?: unknown } & Record<string, unknown>

interface Envelope {
  items: Item[]
  page?: number
  pageSize?: number
  total?: number
  next?: string | null
  cursor?: string | null
}

async function getJson(url: string, headers: Record<string, string> = {}): Promise<unknown> {
  const response = await fetch(url, { headers })
  assert.equal(response.status, 200, `GET ${url}`)
  assert.equal(response.headers.get('content-type'), 'application/json')
  return response.json()
}

/** Reads a whole listing the way a poller would, following the style's own continuation. */
async function readAll(
  base: string,
  path: string,
  style: PagingStyle,
): Promise<{ items: Item[]; pages: number }> {
  if (style === 'array') return { items: (await getJson(`${base}${path}`)) as Item[], pages: 1 }
  const items: Item[] = []
  let url: string | null = `${base}${path}`
  let pages = 0
  while (url !== null) {
    const page = (await getJson(url)) as Envelope
    pages++
    items.push(...page.items)
    if (style === 'page') {
      const { page: number = 0, pageSize = 0, total = 0 } = page
      url = number * pageSize < total ? `${base}${path}?page=${number + 1}` : null
    } else if (style === 'next') {
      url = page.next === null || page.next === undefined ? null : new URL(page.next, base).href
    } else {
      url = page.cursor === null || page.cursor === undefined ? null : `${base}${path}?cursor=${page.cursor}`
    }
    assert.ok(pages < 100, 'paging terminates')
  }
  return { items, pages }
}

async function control(sim: SourceSimulator, method: string, path: string, body?: unknown) {
  const init: RequestInit = { method }
  if (body !== undefined) {
    init.body = JSON.stringify(body)
    init.headers = { 'content-type': 'application/json' }
  }
  const response = await fetch(`${sim.url}/control${path}`, init)
  const text = await response.text()
  return { status: response.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) }
}

describe('source simulator over HTTP: paging styles', () => {
  for (const style of ['array', 'page', 'next', 'cursor'] as const) {
    it(`${style}: every record of both collections exactly once`, async () => {
      const sim = await startSourceSimulator({
        customers: 250,
        products: 30,
        pageSize: 100,
        paging: { customers: style, products: style },
      })
      try {
        const snapshot = sim.snapshot()
        const customers = await readAll(sim.url, '/customers', style)
        assert.deepEqual(customers.items, snapshot.customers)
        assert.equal(customers.pages, style === 'array' ? 1 : 3)
        const products = await readAll(sim.url, '/products', style)
        assert.deepEqual(products.items, snapshot.products)
      } finally {
        await sim.close()
      }
    })
  }

  it('page: the envelope reports the total', async () => {
    const sim = await startSourceSimulator({ customers: 250, pageSize: 100, paging: { customers: 'page' } })
    try {
      const page = (await getJson(`${sim.url}/customers?page=3`)) as Envelope
      assert.deepEqual(
        { ...page, items: page.items.length },
        { items: 50, page: 3, pageSize: 100, total: 250 },
      )
    } finally {
      await sim.close()
    }
  })

  it('next: absolute links point back at the simulator', async () => {
    const sim = await startSourceSimulator({
      customers: 250,
      pageSize: 100,
      paging: { customers: 'next' },
      nextLinks: 'absolute',
    })
    try {
      const page = (await getJson(`${sim.url}/customers`)) as Envelope
      assert.equal(page.next, `${sim.url}/customers?offset=100&limit=100`)
      assert.equal((await readAll(sim.url, '/customers', 'next')).items.length, 250)
    } finally {
      await sim.close()
    }
  })

  it('a malformed paging parameter is a 400 naming it', async () => {
    const sim = await startSourceSimulator({ paging: { customers: 'cursor' } })
    try {
      const response = await fetch(`${sim.url}/customers?cursor=nonsense`)
      assert.equal(response.status, 400)
      assert.match(((await response.json()) as { error: string }).error, /cursor/)
    } finally {
      await sim.close()
    }
  })
})

describe('source simulator over HTTP: data, ETags, faults, auth', () => {
  let sim: SourceSimulator
  before(async () => {
    sim = await startSourceSimulator({ customers: 250, products: 30, pageSize: 100, seed: 3 })
  })
  after(() => sim.close())

  it('answers 304 with no body to the current ETag, and 200 with a new one after a change', async () => {
    const first = await fetch(`${sim.url}/products`)
    const etag = first.headers.get('etag')
    assert.ok(etag !== null)
    await first.arrayBuffer()
    const again = await fetch(`${sim.url}/products`, { headers: { 'if-none-match': etag } })
    assert.equal(again.status, 304)
    assert.equal(await again.text(), '')
    assert.equal(sim.requests().paths['/products']?.lastIfNoneMatch, etag)

    const patched = await control(sim, 'PATCH', '/products/100', { stock: 0 })
    assert.equal(patched.status, 200)
    const changed = await fetch(`${sim.url}/products`, { headers: { 'if-none-match': etag } })
    assert.equal(changed.status, 200)
    assert.notEqual(changed.headers.get('etag'), etag)
    const page = (await changed.json()) as Envelope
    assert.equal(page.items.find((p) => p.id === '100')?.stock, 0)
  })

  it('a deleted record is no longer listed', async () => {
    assert.equal((await control(sim, 'DELETE', '/customers/5')).status, 204)
    const { items } = await readAll(sim.url, '/customers', 'page')
    assert.equal(items.length, 249)
    assert.equal(
      items.some((c) => c.id === '5'),
      false,
    )
    assert.equal((await control(sim, 'GET', '/customers/5')).status, 404)
  })

  it('500, 500, then 200: the request log proves the retries', async () => {
    sim.resetRequests()
    const installed = await control(sim, 'POST', '/faults', { path: '/customers', status: 500, count: 2 })
    assert.equal(installed.status, 200)
    const statuses: number[] = []
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${sim.url}/customers`)
      await response.arrayBuffer()
      statuses.push(response.status)
    }
    assert.deepEqual(statuses, [500, 500, 200])
    const log = (await control(sim, 'GET', '/requests')).body as {
      paths: Record<string, { count: number; statuses: Record<string, number> }>
      recent: { outcome: unknown; path: string }[]
    }
    assert.deepEqual(log.paths['/customers'], {
      count: 3,
      statuses: { 500: 2, 200: 1 },
      lastIfNoneMatch: null,
    })
    assert.deepEqual(
      log.recent.map((r) => r.outcome),
      [500, 500, 200],
    )
  })

  it('an HTML page with status 200', async () => {
    const html = '<!doctype html><html><body>Please log in</body></html>'
    sim.addFaults([{ path: '/products', contentType: 'text/html; charset=utf-8', body: html, count: 1 }])
    const response = await fetch(`${sim.url}/products`)
    assert.equal(response.status, 200)
    assert.equal(response.headers.get('content-type'), 'text/html; charset=utf-8')
    assert.equal(await response.text(), html)
    assert.equal((await fetch(`${sim.url}/products`)).headers.get('content-type'), 'application/json')
  })

  it('a delayed (hung) source delays only its own path', async () => {
    sim.addFaults([{ path: '/customers', delayMs: 400, count: 1 }])
    const started = performance.now()
    const slow = fetch(`${sim.url}/customers`).then(async (r) => {
      await r.arrayBuffer()
      return performance.now() - started
    })
    const other = await fetch(`${sim.url}/products`)
    await other.arrayBuffer()
    const fastElapsed = performance.now() - started
    const slowElapsed = await slow
    assert.ok(slowElapsed >= 390, `delayed response came after ${slowElapsed.toFixed(0)} ms`)
    assert.ok(fastElapsed < 300, `the other source answered after ${fastElapsed.toFixed(0)} ms`)
  })

  it('a client that gives up on a hung source is logged as aborted', async () => {
    sim.resetRequests()
    sim.addFaults([{ path: '/customers', delayMs: 60_000, count: 1 }])
    await assert.rejects(fetch(`${sim.url}/customers`, { signal: AbortSignal.timeout(100) }))
    const deadline = Date.now() + 2000
    while (sim.requests().recent[0]?.outcome !== 'aborted' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    assert.equal(sim.requests().recent[0]?.outcome, 'aborted')
  })

  it('429 with Retry-After', async () => {
    sim.addFaults([{ path: '/products', status: 429, retryAfter: 2, count: 1 }])
    const response = await fetch(`${sim.url}/products`)
    assert.equal(response.status, 429)
    assert.equal(response.headers.get('retry-after'), '2')
    assert.equal(response.headers.get('etag'), null)
    assert.deepEqual(await response.json(), { error: 'injected fault on /products', status: 429 })
  })

  it('invalid records arrive alongside the valid ones of the page', async () => {
    const clean = (await getJson(`${sim.url}/customers?page=2`)) as Envelope
    sim.addFaults([{ path: '/customers', invalidRecords: 3, count: 1 }])
    const mixed = (await getJson(`${sim.url}/customers?page=2`)) as Envelope
    assert.equal(mixed.items.length, clean.items.length + 3)
    const valid = mixed.items.filter((r) => typeof r.id === 'string' && !r.id.startsWith('invalid-'))
    assert.deepEqual(valid, clean.items)
    assert.equal(mixed.total, clean.total, 'the total counts real records only')
    assert.ok(
      mixed.items.some((r) => !('id' in r)),
      'one record has no id',
    )
  })

  it('a dropped connection', async () => {
    sim.resetRequests()
    sim.addFaults([{ path: '/products', drop: true, count: 1 }])
    await assert.rejects(fetch(`${sim.url}/products`))
    assert.equal(sim.requests().recent[0]?.outcome, 'dropped')
    assert.equal((await fetch(`${sim.url}/products`)).status, 200)
  })

  it('a slow body: headers at once, the rest dribbled', async () => {
    sim.addFaults([{ path: '/products', slowBodyMs: 250, slowBodyChunks: 3, count: 1 }])
    const started = performance.now()
    const response = await request(`${sim.url}/products`)
    const headersAfter = performance.now() - started
    const page = (await response.body.json()) as Envelope
    const bodyAfter = performance.now() - started
    assert.equal(response.statusCode, 200)
    assert.ok(headersAfter < 200, `headers after ${headersAfter.toFixed(0)} ms`)
    assert.ok(bodyAfter >= 740, `body after ${bodyAfter.toFixed(0)} ms`)
    assert.equal(page.items.length, 30)
  })

  it('faults can be listed and cleared over HTTP', async () => {
    await control(sim, 'POST', '/faults', [{ path: '/customers', status: 503 }])
    assert.equal(((await control(sim, 'GET', '/faults')).body as unknown[]).length, 1)
    assert.equal((await control(sim, 'DELETE', '/faults')).status, 204)
    assert.equal((await fetch(`${sim.url}/customers`)).status, 200)
  })

  it('bulk mutations report what changed, and the listing reflects it', async () => {
    const result = await control(sim, 'POST', '/mutate', { changes: 3, deletions: 2, creations: 1, seed: 8 })
    const changes = result.body as { customers: { created: string[]; changed: string[]; deleted: string[] } }
    const { items } = await readAll(sim.url, '/customers', 'page')
    const ids = new Set(items.map((c) => String(c.id)))
    for (const id of changes.customers.deleted) assert.equal(ids.has(id), false)
    for (const id of changes.customers.created) assert.equal(ids.has(id), true)
    const snapshot = (await control(sim, 'GET', '/snapshot')).body as { customers: Item[] }
    assert.deepEqual(items, snapshot.customers)
  })

  it('control bodies that are not JSON or fail the schema are 400 with a message', async () => {
    const response = await fetch(`${sim.url}/control/mutate`, { method: 'POST', body: '{nope' })
    assert.equal(response.status, 400)
    assert.match(((await response.json()) as { error: string }).error, /not valid JSON/)
    const invalid = await control(sim, 'POST', '/faults', { status: 'five hundred' })
    assert.equal(invalid.status, 400)
    assert.match((invalid.body as { error: string }).error, /status/)
  })

  it('unknown paths are 404', async () => {
    assert.equal((await fetch(`${sim.url}/orders`)).status, 404)
    assert.equal((await control(sim, 'GET', '/nothing')).status, 404)
  })
})

describe('source simulator over HTTP: Bearer token', () => {
  it('401 without or with a wrong token, 200 with the right one; the control API is open', async () => {
    const sim = await startSourceSimulator({ customers: 5, token: 'tok-123' })
    try {
      const none = await fetch(`${sim.url}/customers`)
      assert.equal(none.status, 401)
      assert.equal(none.headers.get('www-authenticate'), 'Bearer')
      const wrong = await fetch(`${sim.url}/customers`, { headers: { authorization: 'Bearer tok-124' } })
      assert.equal(wrong.status, 401)
      const right = await fetch(`${sim.url}/customers`, { headers: { authorization: 'Bearer tok-123' } })
      assert.equal(right.status, 200)
      assert.equal(((await right.json()) as Envelope).items.length, 5)
      assert.equal((await control(sim, 'GET', '/state')).status, 200)
      assert.deepEqual(sim.requests().paths['/customers']?.statuses, { 401: 2, 200: 1 })
    } finally {
      await sim.close()
    }
  })
})

describe('source simulator lifecycle', () => {
  it('close() ends keep-alive and hung connections promptly', async () => {
    const sim = await startSourceSimulator()
    const agent = new Agent({ keepAliveTimeout: 60_000 })
    const response = await request(`${sim.url}/customers`, { dispatcher: agent })
    await response.body.arrayBuffer()
    sim.addFaults([{ delayMs: 60_000 }])
    const hung = request(`${sim.url}/products`, { dispatcher: agent }).catch((error: unknown) => error)
    await new Promise((resolve) => setTimeout(resolve, 50))
    const started = performance.now()
    await sim.close()
    assert.ok(performance.now() - started < 1000, 'close() did not wait for idle or hung sockets')
    assert.ok((await hung) instanceof Error, 'the hung request failed instead of hanging')
    await sim.close()
    await agent.close()
  })

  it('main.ts prints its URL as one line and exits 0 on SIGTERM', async () => {
    const main = fileURLToPath(new URL('../../src/simulator/main.ts', import.meta.url))
    const child = spawn(process.execPath, [main, '--port', '0', '--customers', '12'], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, SIM_PAGING: 'array' },
    })
    try {
      const lines = createInterface({ input: child.stdout })
      const [url] = (await once(lines, 'line')) as [string]
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/)
      const customers = (await getJson(`${url}/customers`)) as Item[]
      assert.equal(customers.length, 12)
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      const [code] = (await exited) as [number | null]
      assert.equal(code, 0)
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL')
    }
  })
})
