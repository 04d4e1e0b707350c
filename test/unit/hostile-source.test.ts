/**
 * Hostile source responses (generated) through the producer's pure parsing path: header checks,
 * body decoding, page parsing and record validation. Every case ends in its expected outcome: the
 * stable error code that fails the page, or exactly the expected records passing and the others
 * refused with a reason naming the field. The same generators feed the real HTTP path in
 * test/integration/hostile-source.test.ts.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { contentHash } from '../../src/domain/canonical.ts'
import { validateRecord } from '../../src/domain/records.ts'
import { isPipelineError } from '../../src/errors.ts'
import { parseBody } from '../../src/sources/body.ts'
import { checkResponseHeaders } from '../../src/sources/http-page.ts'
import { parsePage } from '../../src/sources/pagination.ts'
import {
  deepArray,
  HOSTILE_MAX_BYTES,
  type HostileCase,
  hostileSourceCase,
} from '../helpers/hostile-source.ts'

const url = new URL('http://source.test/customers')
const RUNS = 800

type Outcome = { kind: 'error'; code: string } | { kind: 'listing'; valid: string[]; invalid: string[] }

/** What the producer's parsing makes of a response (the scan's steps, without the I/O). */
function outcomeOf(c: HostileCase): Outcome {
  const headers = { ...c.response.headers, 'content-length': String(c.response.body.length) }
  try {
    const refused = checkResponseHeaders(url, c.response.status, headers, HOSTILE_MAX_BYTES)
    if (refused) throw refused
    const page = parsePage(parseBody(url, c.response.body), url)
    if (!page.ok) return { kind: 'error', code: 'PIPELINE_SOURCE_BAD_SHAPE' }
    const valid: string[] = []
    const invalid: string[] = []
    for (const raw of page.items) {
      const result = validateRecord(c.entity, raw)
      if (result.ok) {
        // What the producer does next with a valid record: hash it. Junk was stripped first.
        assert.match(contentHash(result.record), /^[0-9a-f]{64}$/)
        valid.push(result.record.id)
      } else invalid.push(result.reason)
    }
    return { kind: 'listing', valid, invalid }
  } catch (error) {
    if (!isPipelineError(error)) throw error
    assert.doesNotMatch(error.message, /\n/, 'the error is one line')
    assert.ok(error.message.includes(url.href), 'the error names the URL')
    return { kind: 'error', code: error.code }
  }
}

test(`${RUNS} generated hostile responses each end in their expected error code or per-record outcome`, () => {
  const kinds = new Map<string, number>()
  fc.assert(
    fc.property(hostileSourceCase, (c) => {
      const outcome = outcomeOf(c)
      kinds.set(c.kind, (kinds.get(c.kind) ?? 0) + 1)
      if (c.expect.kind === 'error') {
        assert.deepEqual(outcome, { kind: 'error', code: c.expect.code })
        return
      }
      const expected = c.expect
      assert.equal(outcome.kind, 'listing')
      if (outcome.kind !== 'listing') return
      assert.deepEqual(outcome.valid, expected.valid)
      assert.equal(outcome.invalid.length, expected.invalid.length)
      for (const [i, reason] of outcome.invalid.entries()) assert.match(reason, expected.invalid[i] as RegExp)
    }),
    { numRuns: RUNS },
  )
  // Every family was drawn (the weights make each likely many times over in 800 runs).
  assert.ok(kinds.size >= 8, `families drawn: ${[...kinds.keys()].join(', ')}`)
})

test('a 100k-deep value: parsed without overflow, refused by the schema in a field, stripped as junk', () => {
  const depth = 100_000
  const text = `${'['.repeat(depth)}${']'.repeat(depth)}`
  const body = Buffer.from(
    `[{"id":"1","sku":"s","name":${text},"price":1,"stock":1,"updatedAt":"2026-01-01T00:00:00Z"}]`,
  )
  const page = parsePage(parseBody(url, body), url)
  assert.ok(page.ok)
  const refused = validateRecord('product', page.items[0])
  assert.deepEqual(refused, { ok: false, reason: 'name: Invalid input: expected string, received array' })

  const junk = {
    id: '2',
    sku: 's',
    name: 'n',
    price: 1,
    stock: 1,
    updatedAt: '2026-01-01T00:00:00Z',
    x: deepArray(depth),
  }
  const kept = validateRecord('product', junk)
  assert.ok(kept.ok)
  assert.equal('x' in kept.record, false, 'the unknown deep field is stripped before hashing')
  assert.match(contentHash(kept.record), /^[0-9a-f]{64}$/)
  assert.equal(validateRecord('customer', deepArray(depth)).ok, false)
})

test('a body over the limit without a declared length is left to the streaming check; a declared one is refused unread', () => {
  const headers = { 'content-type': 'application/json', 'content-length': String(HOSTILE_MAX_BYTES + 1) }
  const refused = checkResponseHeaders(url, 200, headers, HOSTILE_MAX_BYTES)
  assert.equal(refused?.code, 'PIPELINE_SOURCE_TOO_LARGE')
  assert.equal(
    checkResponseHeaders(url, 200, { 'content-type': 'application/json' }, HOSTILE_MAX_BYTES),
    undefined,
  )
  assert.equal(
    checkResponseHeaders(
      url,
      200,
      { 'content-type': 'application/json', 'content-encoding': 'identity' },
      10,
    ),
    undefined,
  )
})

test('a UTF-8 byte order mark is accepted; a control character in a quoted header is flattened', () => {
  assert.deepEqual(parseBody(url, Buffer.from('\ufeff[1]')), [1])
  const refused = checkResponseHeaders(url, 200, { 'content-type': 'text/html\r\nx: y' }, 10)
  assert.equal(refused?.code, 'PIPELINE_SOURCE_NOT_JSON')
  assert.doesNotMatch(refused?.message ?? '', /[\r\n]/)
})
