import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { handleControl } from '../../src/simulator/control.ts'
import { simulatorOptionsFrom } from '../../src/simulator/options.ts'
import { Simulator, type SimulatorSettings } from '../../src/simulator/simulator.ts'

const settings: SimulatorSettings = {
  paging: { customers: 'page', products: 'array' },
  pageSize: 10,
  maxPageSize: 100,
  nextLinks: 'relative',
  token: null,
}
const origin = 'http://127.0.0.1:1'
const clock = () => Date.UTC(2026, 5, 1)

function make(overrides: Partial<SimulatorSettings> = {}): Simulator {
  return new Simulator({ customers: 25, products: 5, seed: 1 }, { ...settings, ...overrides }, clock)
}

function body(sim: Simulator, name: 'customers' | 'products', query = '', ifNoneMatch?: string, invalid = 0) {
  const listing = sim.listing(name, query, origin, ifNoneMatch, invalid)
  if (listing.kind !== 'body') throw new Error(`expected a body, got ${listing.kind}`)
  return { ...listing, json: JSON.parse(listing.body.toString()) as { items: Record<string, unknown>[] } }
}

describe('simulator listings', () => {
  it('serves the same cached bytes until the collection changes', () => {
    const sim = make()
    const first = body(sim, 'customers', 'page=2')
    assert.equal(body(sim, 'customers', 'page=2').body, first.body, 'second request reuses the rendered page')
    assert.equal(body(sim, 'customers', 'page=2&pageSize=10').body, first.body, 'same page, same cache entry')
    sim.patch('customers', '11', { status: 'churned' })
    const after = body(sim, 'customers', 'page=2')
    assert.notEqual(after.body, first.body)
    assert.notEqual(after.etag, first.etag)
    assert.equal(after.json.items[0]?.status, 'churned')
  })

  it('answers not-modified to the current ETag only', () => {
    const sim = make()
    const { etag } = body(sim, 'products')
    assert.deepEqual(sim.listing('products', '', origin, etag), { kind: 'not-modified', etag })
    assert.equal(sim.listing('products', '', origin, `W/${etag}, "other"`).kind, 'not-modified')
    assert.equal(sim.listing('products', '', origin, '"stale"').kind, 'body')
    sim.remove('products', '100')
    assert.equal(sim.listing('products', '', origin, etag).kind, 'body', 'a mutation invalidates the tag')
  })

  it('changes ETags when settings change, so a restarted or reconfigured source is refetched', () => {
    const sim = make()
    const before = sim.etag('customers')
    sim.configure({ paging: { customers: 'cursor' } })
    assert.notEqual(sim.etag('customers'), before)
    assert.equal(sim.settings().paging.products, 'array', 'untouched settings stay')
    assert.notEqual(make().etag('customers'), make().etag('customers'))
  })

  it('mixes invalid records among the valid ones of one response without caching it', () => {
    const sim = make()
    const clean = body(sim, 'customers', 'page=1')
    const broken = body(sim, 'customers', 'page=1', clean.etag, 3)
    assert.equal(broken.json.items.length, 13)
    const valid = broken.json.items.filter((r) => typeof r.id === 'string' && !r.id.startsWith('invalid-'))
    assert.deepEqual(valid, clean.json.items)
    assert.notEqual(broken.json.items[0]?.id, undefined, 'valid records come first, invalid ones in between')
    assert.notEqual(broken.etag, clean.etag)
    assert.equal(body(sim, 'customers', 'page=1').body, clean.body, 'the next request is clean again')
  })

  it('refuses bad paging parameters', () => {
    const listing = make().listing('customers', 'page=-2', origin, undefined)
    assert.equal(listing.kind, 'bad-request')
  })

  it('builds absolute next links from the origin when asked to', () => {
    const sim = make({ paging: { customers: 'next', products: 'next' }, nextLinks: 'absolute' })
    const page = JSON.parse(body(sim, 'customers').body.toString()) as { next: string }
    assert.equal(page.next, `${origin}/customers?offset=10&limit=10`)
  })

  it('checks the Bearer token only when one is configured', () => {
    assert.equal(make().authorized(undefined), true)
    const sim = make({ token: 's3cret' })
    assert.equal(sim.authorized(undefined), false)
    assert.equal(sim.authorized('Bearer wrong!'), false)
    assert.equal(sim.authorized('Basic s3cret'), false)
    assert.equal(sim.authorized('Bearer s3cret'), true)
    assert.equal(sim.authorized('bearer s3cret'), true)
  })
})

describe('simulator control API', () => {
  const control = (sim: Simulator, method: string, path: string, payload?: unknown) =>
    handleControl(sim, method, path, payload, clock)

  it('creates, patches, reads and deletes records', () => {
    const sim = make()
    const record = { name: 'N', email: 'n@example.com', status: 'active', productIds: ['100'] }
    const created = control(sim, 'PUT', '/customers/c%2F1', record)
    assert.equal(created.status, 201)
    assert.deepEqual(created.body, { ...record, id: 'c/1', updatedAt: new Date(clock()).toISOString() })
    assert.equal(control(sim, 'PUT', '/customers/c%2F1', record).status, 200)
    const patched = control(sim, 'PATCH', '/customers/c%2F1', { status: 'inactive' })
    assert.equal((patched.body as { status: string }).status, 'inactive')
    assert.equal(control(sim, 'GET', '/customers/c%2F1').status, 200)
    assert.equal(control(sim, 'DELETE', '/customers/c%2F1').status, 204)
    assert.equal(control(sim, 'DELETE', '/customers/c%2F1').status, 404)
    assert.equal(control(sim, 'PATCH', '/customers/c%2F1', { status: 'x' }).status, 404)
  })

  it('keeps a numeric id from the body of a PUT', () => {
    const sim = make()
    const product = { id: 700, sku: 'S', name: 'P', price: 2, stock: 1 }
    assert.equal(control(sim, 'PUT', '/products/700', product).status, 201)
    assert.equal(sim.get('products', '700')?.id, 700)
  })

  it('answers 400 with a message naming what was wrong', () => {
    const sim = make()
    const cases: [string, string, unknown, RegExp][] = [
      ['PATCH', '/products/100', { price: '12.50' }, /price: .*number/],
      ['PATCH', '/products/100', { id: '5' }, /id|Unrecognized key/],
      ['PUT', '/products/100', { sku: 'S', name: 'P', price: 1 }, /stock/],
      ['PUT', '/products/100', { id: 101, sku: 'S', name: 'P', price: 1, stock: 1 }, /does not match/],
      ['POST', '/mutate', { changes: -1 }, /changes/],
      ['POST', '/dataset', { customers: 1, products: 1 }, /seed/],
      ['POST', '/faults', { path: '/orders', status: 500 }, /path/],
      ['POST', '/faults', { path: '/customers', count: 2 }, /at least one effect/],
      ['PATCH', '/settings', { paging: { customers: 'pages' } }, /paging\.customers/],
      ['POST', '/mutate', undefined, /JSON body is required/],
      ['GET', '/customers/%E0%A4%A', undefined, /percent-encoding/],
    ]
    for (const [method, path, payload, message] of cases) {
      const response = control(sim, method, path, payload)
      assert.equal(response.status, 400, `${method} ${path} ${JSON.stringify(payload)}`)
      assert.match((response.body as { error: string }).error, message)
    }
  })

  it('installs faults, reports state, mutates and replaces the data set', () => {
    const sim = make()
    const faults = control(sim, 'POST', '/faults', [
      { path: '/customers', status: 500, count: 2 },
      { delayMs: 5 },
    ])
    assert.equal((faults.body as unknown[]).length, 2)
    assert.equal((control(sim, 'GET', '/state').body as { faults: number }).faults, 2)
    assert.equal(control(sim, 'DELETE', '/faults').status, 204)
    assert.deepEqual(sim.faults(), [])

    const mutation = control(sim, 'POST', '/mutate', { changes: 2, collection: 'products', seed: 1 })
    assert.equal((mutation.body as { products: { changed: string[] } }).products.changed.length, 2)
    const replaced = control(sim, 'POST', '/dataset', { customers: 3, products: 1, seed: 4 })
    assert.equal((replaced.body as { customers: { count: number } }).customers.count, 3)
    const snapshot = control(sim, 'GET', '/snapshot').body as { customers: unknown[]; products: unknown[] }
    assert.equal(snapshot.customers.length, 3)
    assert.equal(snapshot.products.length, 1)
  })

  it('never reveals the token', () => {
    const sim = make({ token: 's3cret' })
    assert.equal(JSON.stringify(control(sim, 'GET', '/settings').body).includes('s3cret'), false)
    assert.equal(JSON.stringify(control(sim, 'GET', '/state').body).includes('s3cret'), false)
  })

  it('answers 404 for unknown routes', () => {
    assert.equal(handleControl(make(), 'GET', '/nope', undefined).status, 404)
    assert.equal(handleControl(make(), 'POST', '/state', {}).status, 404)
  })
})

describe('simulator process options', () => {
  it('reads flags, falls back to the environment, and lets flags win', () => {
    const options = simulatorOptionsFrom(
      ['--port', '4100', '--paging', 'cursor', '--products-paging', 'array'],
      {
        SIM_PORT: '1',
        SIM_CUSTOMERS: '100000',
        SIM_SEED: '9',
      },
    )
    assert.deepEqual(options, {
      port: 4100,
      customers: 100_000,
      seed: 9,
      paging: { customers: 'cursor', products: 'array' },
    })
  })

  it('names the flag or variable with a bad value', () => {
    assert.throws(() => simulatorOptionsFrom(['--page-size', '0'], {}), /--page-size="0"/)
    assert.throws(() => simulatorOptionsFrom([], { SIM_PAGING: 'pages' }), /SIM_PAGING="pages"/)
    assert.throws(() => simulatorOptionsFrom(['--bogus', '1'], {}), /bogus/)
  })
})
