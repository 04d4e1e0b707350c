import assert from 'node:assert/strict'
import { test } from 'node:test'
import { contentHash } from '../../src/domain/canonical.ts'
import { upsertMessage } from '../../src/domain/envelope.ts'
import { type EntityRecord, validateRecord } from '../../src/domain/records.ts'
import { ErrorCodes, isPipelineError } from '../../src/errors.ts'
import {
  PageScan,
  type PageScanSpec,
  type UnpackedRecord,
  unpackRecords,
} from '../../src/sources/page-scan.ts'
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

async function scanAll(
  scanner: PageScanner,
  pages: Buffer[],
): Promise<{ records: UnpackedRecord[]; invalid: number }> {
  const session = scanner.open(spec)
  const records: UnpackedRecord[] = []
  let invalid = 0
  try {
    for (const [i, page] of pages.entries()) {
      const scanned = session.page(url(i + 1), page)
      const next = await scanned.read
      assert.equal(next, i + 1 < pages.length ? url(i + 2) : undefined)
      const result = await scanned.records
      unpackRecords(result.records, records)
      invalid += result.invalid.length
    }
  } finally {
    session.close()
  }
  return { records, invalid }
}

test('a worker thread scans pages exactly as the main thread does, and the pool stops', async () => {
  const pages = [
    paged(1, [customer(1), customer('é')]),
    paged(2, [customer(1), { id: 'x' }]),
    paged(3, [customer(3), customer(4)]),
  ]
  const inline = await scanAll(inlineScanner(), pages)
  const workers = workerScanner(2)
  try {
    const threaded = await scanAll(
      workers,
      pages.map((page) => Buffer.from(page)),
    )
    assert.deepEqual(threaded, inline)
    assert.equal(inline.records.length, 4)
    assert.equal(inline.invalid, 2)
  } finally {
    await workers.close()
  }
})

test('a page sent to a stopped pool fails with PIPELINE_SOURCE_SCAN_FAILED rather than hanging', async () => {
  const workers = workerScanner(1)
  const session = workers.open(spec)
  await workers.close()
  const page = session.page(url(1), paged(1, [customer(1)], 1))
  await assert.rejects(page.read, (error: unknown) => isPipelineError(error, ErrorCodes.SOURCE_SCAN_FAILED))
  await assert.rejects(page.records, (error: unknown) =>
    isPipelineError(error, ErrorCodes.SOURCE_SCAN_FAILED),
  )
  session.close()
})

test('an invalid record too deep to serialize crosses threads: serializing it fails with the same reason', async () => {
  const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`
  const page = Buffer.from(`[${JSON.stringify(customer(1))},${deep},{"id":"x","deep":${deep}}]`)
  const workers = workerScanner(1)
  const session = workers.open(spec)
  try {
    const scanned = session.page(url(1), page)
    assert.equal(await scanned.read, undefined)
    const result = await scanned.records
    assert.equal(result.records.ends.length, 1)
    assert.equal(result.invalid.length, 2)
    for (const item of result.invalid) {
      assert.throws(() => JSON.stringify(item.raw), /Maximum call stack size exceeded/)
    }
    assert.equal(result.invalid[1]?.listedId, 'x')
  } finally {
    session.close()
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
