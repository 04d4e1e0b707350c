import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { Agent } from 'undici'
import { contentHash } from '../../src/domain/canonical.ts'
import { upsertMessage } from '../../src/domain/envelope.ts'
import { type EntityRecord, validateRecord } from '../../src/domain/records.ts'
import { ErrorCodes, isPipelineError } from '../../src/errors.ts'
import {
  type InvalidRecord,
  PageScan,
  type PageScanSpec,
  type UnpackedRecord,
  unpackRecords,
} from '../../src/sources/page-scan.ts'
import { scanSource, splitPages } from '../../src/sources/scan.ts'
import { inlineScanner, type PageScanner, workerScanner } from '../../src/sources/scan-pool.ts'

const spec: PageScanSpec = {
  name: 'crm',
  entity: 'customer',
  polledAt: '2026-02-04T18:31:00.000Z',
  maxInvalid: 3,
}
const origin = { name: 'crm', entity: 'customer' as const, topic: 'customer_data' }

const customer = (id: string | number, name = `name ${id}`) => ({
  // Keys out of order, and a field the schema strips: the envelope holds the canonical record.
  updatedAt: '2026-02-04T18:30:00Z',
  id,
  name,
  email: `${id}@example.com`,
  status: 'active',
  productIds: ['100', 200],
  junk: { nested: true },
})

const body = (value: unknown) => Buffer.from(JSON.stringify(value))
const url = (page: number) => `http://source.test/customers?page=${page}&pageSize=2`
const paged = (page: number, items: unknown[], total = 6) => body({ page, pageSize: 2, total, items })

function expected(raw: unknown): UnpackedRecord {
  const validation = validateRecord('customer', raw)
  assert.ok(validation.ok)
  const record: EntityRecord = validation.record
  const message = upsertMessage(origin, record, spec.polledAt)
  return { id: record.id, hash: contentHash(record), record: Buffer.from(message.value ?? '') }
}

test('a page gives its next link first, then each valid record as id, content hash and the envelope an upsert carries', () => {
  const scan = new PageScan(spec)
  const read = scan.read(url(1), paged(1, [customer(1), customer('two', 'Zoë ✓')]))
  assert.ok(read.ok)
  assert.equal(read.next, url(2))
  const page = read.records()
  assert.equal(page.fetched, 2)
  assert.deepEqual(page.invalid, [])
  const records: UnpackedRecord[] = []
  unpackRecords(page.records, records)
  assert.deepEqual(records, [expected(customer(1)), expected(customer('two', 'Zoë ✓'))])
})

test('duplicates across pages: the first occurrence wins, later ones are invalid with their raw record', () => {
  const scan = new PageScan(spec)
  const first = scan.read(url(1), paged(1, [customer(1), customer(2)]))
  assert.ok(first.ok)
  first.records()
  const again = customer(1, 'another name')
  const second = scan.read(url(2), paged(2, [again, { id: 3 }]))
  assert.ok(second.ok)
  const page = second.records()
  assert.equal(page.records.ends.length, 0)
  assert.equal(page.invalid.length, 2)
  assert.deepEqual(page.invalid[0], {
    raw: again,
    reason: 'duplicate id 1 in one listing',
    url: url(2),
    id: '1',
    listedId: '1',
  })
  assert.equal(page.invalid[1]?.listedId, '3')
  assert.match(page.invalid[1]?.reason ?? '', /^name: /)
})

test('invalid records are counted across the pages of one scan: one over the cap fails it', () => {
  const scan = new PageScan(spec)
  const first = scan.read(url(1), paged(1, [{}, {}]))
  assert.ok(first.ok)
  assert.equal(first.records().invalid.length, 2)
  const second = scan.read(url(2), paged(2, [{}, {}]))
  assert.ok(second.ok)
  assert.throws(second.records, (error: unknown) =>
    isPipelineError(error, ErrorCodes.SOURCE_TOO_MANY_INVALID),
  )
})

test('a body that is not JSON, not UTF-8 or not a listing fails the page with its code', () => {
  const scan = new PageScan(spec)
  const cases: Array<[Uint8Array, string]> = [
    [Buffer.from('{"items": ['), ErrorCodes.SOURCE_NOT_JSON],
    [Buffer.from([0x5b, 0xff, 0x5d]), ErrorCodes.SOURCE_BAD_ENCODING],
    [body({ nothing: true }), ErrorCodes.SOURCE_BAD_SHAPE],
  ]
  for (const [bytes, code] of cases) {
    const read = scan.read(url(1), bytes)
    assert.ok(!read.ok)
    assert.equal(read.code, code, read.message)
    assert.ok(read.message.includes(url(1)), read.message)
  }
})

/** Serves `pages` (page n at `?page=n`) over real HTTP while `work` runs. */
function serving<T>(pages: Buffer[], work: (base: URL) => Promise<T>): Promise<T> {
  return servingPages(async (page) => pages[page - 1], work)
}

/** Serves the body `answer` gives for page n (`?page=n`) over real HTTP while `work` runs. */
async function servingPages<T>(
  answer: (page: number) => Promise<Buffer | undefined>,
  work: (base: URL) => Promise<T>,
): Promise<T> {
  const server = createServer(async (request, response) => {
    const page = Number(new URL(request.url ?? '/', 'http://x').searchParams.get('page') ?? '1')
    const body = await answer(page)
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end(body)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  try {
    return await work(new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/customers`))
  } finally {
    server.close()
  }
}

const settings = {
  timeoutMs: 5000,
  deadlineMs: 10_000,
  maxBytes: 1 << 24,
  retry: { maxAttempts: 1, baseDelayMs: 10, maxDelayMs: 10 },
  maxPages: 10,
  maxInvalid: spec.maxInvalid,
  polledAt: spec.polledAt,
}

/** The CRM source at `base`. */
const sourceAt = (base: URL) => ({
  name: 'crm',
  entity: 'customer' as const,
  label: 'Customer',
  url: base,
  topic: 't',
  token: undefined,
})

async function scanAll(
  scanner: PageScanner,
  base: URL,
): Promise<{ records: UnpackedRecord[]; invalid: unknown[]; end: unknown }> {
  const source = sourceAt(base)
  const records: UnpackedRecord[] = []
  const invalid: unknown[] = []
  const end = await scanner.scan(source, settings, {}, (page) => {
    unpackRecords(page.records, records)
    invalid.push(...page.invalid)
  })
  return { records, invalid, end }
}

const pagedAt = (page: number, items: unknown[]) => body({ page, pageSize: 2, total: 6, items })

test('a worker thread scans a listing exactly as the main thread does, and the pool stops', async () => {
  const pages = [
    pagedAt(1, [customer(1), customer('é')]),
    pagedAt(2, [customer(1), { id: 'x' }]),
    pagedAt(3, [customer(3), customer(4)]),
  ]
  const agent = new Agent()
  const workers = workerScanner(2)
  try {
    await serving(pages, async (base) => {
      const inline = await scanAll(inlineScanner(agent), base)
      const threaded = await scanAll(workers, base)
      assert.deepEqual(threaded, inline)
      assert.equal(inline.records.length, 4)
      assert.equal(inline.invalid.length, 2)
      assert.deepEqual(inline.end, { kind: 'listing', pages: 3, etag: undefined })
    })
  } finally {
    await workers.close()
    await agent.close()
  }
})

test('a scan on a stopped pool fails with PIPELINE_SOURCE_SCAN_FAILED rather than hanging', async () => {
  const workers = workerScanner(1)
  await workers.close()
  await assert.rejects(scanAll(workers, new URL('http://127.0.0.1:9/customers')), (error: unknown) =>
    isPipelineError(error, ErrorCodes.SOURCE_SCAN_FAILED),
  )
})

test("a page's error crosses threads with its code; an aborted scan stops", async () => {
  const workers = workerScanner(1)
  try {
    await serving([Buffer.from('{"items": [')], async (base) => {
      await assert.rejects(scanAll(workers, base), (error: unknown) =>
        isPipelineError(error, ErrorCodes.SOURCE_NOT_JSON),
      )
    })
    const source = {
      name: 'crm',
      entity: 'customer' as const,
      label: 'Customer',
      url: new URL('http://127.0.0.1:9/x'),
      topic: 't',
      token: undefined,
    }
    const retrying = { ...settings, retry: { maxAttempts: 100, baseDelayMs: 60_000, maxDelayMs: 60_000 } }
    const abort = new AbortController()
    const scanned = workers.scan(
      source,
      retrying,
      { signal: abort.signal, onRetry: () => abort.abort() },
      () => undefined,
    )
    await assert.rejects(scanned, (error: unknown) => isPipelineError(error, ErrorCodes.SOURCE_ABORTED))
  } finally {
    await workers.close()
  }
})

test('an invalid record too deep to serialize crosses threads: serializing it fails with the same reason', async () => {
  const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`
  const page = Buffer.from(`[${JSON.stringify(customer(1))},${deep},{"id":"x","deep":${deep}}]`)
  const workers = workerScanner(1)
  try {
    await serving([page], async (base) => {
      const result = await scanAll(workers, base)
      assert.equal(result.records.length, 1)
      assert.equal(result.invalid.length, 2)
      for (const item of result.invalid as InvalidRecord[]) {
        assert.throws(() => JSON.stringify(item.raw), /Maximum call stack size exceeded/)
      }
      assert.equal((result.invalid[1] as InvalidRecord).listedId, 'x')
    })
  } finally {
    await workers.close()
  }
})

test('records larger than the first buffer, and characters of every UTF-8 width, come out byte for byte', () => {
  const raws = [customer(1, 'é✓😀'.repeat(300)), customer(2), customer(3, 'x'.repeat(900))]
  const scan = new PageScan(spec)
  const read = scan.read(url(1), body(raws))
  assert.ok(read.ok)
  const records: UnpackedRecord[] = []
  unpackRecords(read.records().records, records)
  assert.deepEqual(records, raws.map(expected))
})

test('a listing paged by numbers is shared after its first page: every other page each, all with its numbers', () => {
  const first = new URL('http://source.test/customers?status=active')
  const at = (page: number) => ({
    url: `http://source.test/customers?status=active&page=${page}&pageSize=2`,
    index: page - 1,
  })
  const odd = { page: 1, pageSize: 2, total: 9 }
  assert.deepEqual(splitPages(first, odd), {
    mine: { pages: [at(2), at(4)], numbers: odd },
    theirs: { pages: [at(3), at(5)], numbers: odd },
  })
  const even = { page: 1, pageSize: 2, total: 8 }
  assert.deepEqual(splitPages(first, even), {
    mine: { pages: [at(2), at(4)], numbers: even },
    theirs: { pages: [at(3)], numbers: even },
  })
})

/** `scanSource` over HTTP, on `scanner`. */
function scanWith(scanner: PageScanner, base: URL, agent: Agent) {
  return scanSource(sourceAt(base), { ...settings, scanner, dispatcher: agent })
}

/** Two scan threads and an inline scanner, closed after `work`. */
async function withScanners(
  work: (threads: PageScanner, inline: PageScanner, agent: Agent) => Promise<void>,
) {
  const agent = new Agent()
  const threads = workerScanner(2)
  try {
    await work(threads, inlineScanner(agent), agent)
  } finally {
    await threads.close()
    await agent.close()
  }
}

test('two threads read a listing paged by numbers as one does: same records in listing order, an id repeated across threads dead-lettered with its raw record', async () => {
  // Pages 2 and 4 go to the thread that read page 1, pages 3 and 5 to the other. Id 4 comes back
  // on page 5 (another thread than page 2's), id 1 on page 4 (the same thread as page 1's).
  const again = { ...customer(4, 'changed'), extra: 'kept in the raw record' }
  const page = (n: number, items: unknown[]) => body({ page: n, pageSize: 2, total: 10, items })
  const pages = [
    page(1, [customer(1), customer(2)]),
    page(2, [customer(3), customer(4)]),
    page(3, [customer(5), { id: 'bad' }]),
    page(4, [customer(1, 'again'), customer(7)]),
    page(5, [again, customer(9)]),
  ]
  await withScanners(async (threads, inline, agent) => {
    await serving(pages, async (base) => {
      const split = await scanWith(threads, base, agent)
      const single = await scanWith(inline, base, agent)
      assert.ok(split.kind === 'listing' && single.kind === 'listing')
      assert.deepEqual(
        split.records.map((r) => r.id),
        ['1', '2', '3', '4', '5', '7', '9'],
      )
      assert.deepEqual(split.records, single.records)
      assert.equal(split.pages, 5)
      assert.equal(split.fetched, 10)
      const byReason = (items: readonly InvalidRecord[]) =>
        [...items].sort((a, b) => a.reason.localeCompare(b.reason))
      assert.deepEqual(byReason(split.invalid), byReason(single.invalid))
      const repeated = split.invalid.find((item) => item.id === '4')
      assert.deepEqual(repeated, {
        raw: again,
        reason: 'duplicate id 4 in one listing',
        url: new URL('?page=5&pageSize=2', base).href,
        id: '4',
        listedId: '4',
      })
    })
  })
})

test('two threads: a record that an insert moves between pages read out of order is not lost; the listing is read again in order', async () => {
  // Newest first, 10 records in 5 pages. Page 4 is answered only once page 5 was, and a new record
  // goes in front just before: record 7 moves from page 4 to page 5, and out of order neither sees it.
  let list = Array.from({ length: 10 }, (_, i) => customer(i))
  const page5 = Promise.withResolvers<void>()
  const answer = async (page: number) => {
    if (page === 4) {
      await page5.promise
      if (list.length === 10) list = [customer('new'), ...list]
    }
    const items = list.slice(2 * (page - 1), 2 * page)
    if (page === 5) setImmediate(() => page5.resolve())
    return body({ page, pageSize: 2, total: list.length, items })
  }
  await withScanners(async (threads, _inline, agent) => {
    await servingPages(answer, async (base) => {
      const rescans: string[] = []
      const result = await scanSource(sourceAt(base), {
        ...settings,
        scanner: threads,
        dispatcher: agent,
        onRescan: (reason) => rescans.push(reason),
      })
      assert.ok(result.kind === 'listing')
      assert.deepEqual(
        result.records.map((r) => r.id),
        ['new', ...Array.from({ length: 10 }, (_, i) => String(i))],
      )
      assert.equal(rescans.length, 1)
      assert.match(
        rescans[0] ?? '',
        /page=4.* should be page 4 \(pageSize 2, total 10\) but says page 4, pageSize 2, total 11: the listing changed while it was read/,
      )
    })
  })
  // A page that answers as another page number: read again in order, where its link loops back.
  const shifted = [pagedAt(1, [customer(1)]), pagedAt(2, [customer(2)]), pagedAt(2, [customer(3)])]
  await withScanners(async (threads, _inline, agent) => {
    await serving(shifted, async (base) => {
      await assert.rejects(
        scanWith(threads, base, agent),
        (error: unknown) =>
          isPipelineError(error, ErrorCodes.SOURCE_BAD_SHAPE) &&
          /links back to a page already read/.test((error as Error).message),
      )
    })
  })
})

test('two threads: a stopping service aborts both threads of a scan', async () => {
  const hung = Promise.withResolvers<Buffer | undefined>()
  await withScanners(async (threads, _inline, agent) => {
    await servingPages(
      async (page) => (page === 3 ? hung.promise : pagedAt(page, [customer(page)])),
      async (base) => {
        const abort = new AbortController()
        const scanned = scanSource(sourceAt(base), {
          ...settings,
          scanner: threads,
          dispatcher: agent,
          signal: abort.signal,
        })
        setTimeout(() => abort.abort(), 200)
        await assert.rejects(scanned, (error: unknown) => isPipelineError(error, ErrorCodes.SOURCE_ABORTED))
        hung.resolve(pagedAt(3, [customer(3)]))
        // Both threads are free again: a scan after it completes.
        const result = await scanWith(threads, base, agent)
        assert.ok(result.kind === 'listing')
        assert.equal(result.records.length, 3)
      },
    )
  })
})

test("two threads: either one's failure fails the scan with its own error; invalid records count across both", async () => {
  await withScanners(async (threads, _inline, agent) => {
    const broken = [pagedAt(1, [customer(1)]), pagedAt(2, [customer(2)]), Buffer.from('{"items": [')]
    await serving(broken, async (base) => {
      await assert.rejects(scanWith(threads, base, agent), (error: unknown) =>
        isPipelineError(error, ErrorCodes.SOURCE_NOT_JSON),
      )
    })
    // Two invalid records on each thread's pages: within each thread's cap of 3, over it together.
    const junk = [pagedAt(1, [customer(1)]), pagedAt(2, [{}, {}]), pagedAt(3, [{}, {}])]
    await serving(junk, async (base) => {
      await assert.rejects(scanWith(threads, base, agent), (error: unknown) =>
        isPipelineError(error, ErrorCodes.SOURCE_TOO_MANY_INVALID),
      )
    })
    // The pool is still usable after both.
    await serving(
      [pagedAt(1, [customer(1)]), pagedAt(2, [customer(2)]), pagedAt(3, [customer(3)])],
      async (base) => {
        const result = await scanWith(threads, base, agent)
        assert.ok(result.kind === 'listing')
        assert.equal(result.records.length, 3)
      },
    )
  })
})
