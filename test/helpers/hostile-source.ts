/**
 * Generators (fast-check) of hostile source responses, each with the outcome the producer must reach:
 * the error code that fails the page, or, for a listing, which records are published and which are
 * dead-lettered with a reason naming the field. Shared by the unit test (pure parsing) and the
 * integration test (the same cases served by a real HTTP server to the real scan).
 */
import { gzipSync } from 'node:zlib'
import fc from 'fast-check'
import type { EntityName } from '../../src/domain/records.ts'
import { ErrorCodes } from '../../src/errors.ts'
import { customer, product } from './sources.ts'

/** A raw HTTP answer of a source. */
export interface HostileResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: Buffer
}

/** What must come of a listing that parses: valid ids published, the others dead-lettered. */
export interface ListingOutcome {
  readonly kind: 'listing'
  /** Ids of the records that must pass, in listing order. */
  readonly valid: readonly string[]
  /** Per dead-lettered record, in listing order, a pattern its reason must match. */
  readonly invalid: readonly RegExp[]
}

/** A hostile case: what the source answers and what must come of it. */
export interface HostileCase {
  /** The family of the case, for counting outcomes by kind. */
  readonly kind: string
  readonly entity: EntityName
  readonly response: HostileResponse
  readonly expect: { readonly kind: 'error'; readonly code: string } | ListingOutcome
}

/** The page size limit the cases are built against (SOURCE_MAX_RESPONSE_BYTES in the tests). */
export const HOSTILE_MAX_BYTES = 256 * 1024

const json = { 'content-type': 'application/json' }

/** A valid record of `entity` with id `id`. */
export function validRecord(entity: EntityName, id: string): Record<string, unknown> {
  return entity === 'customer' ? { ...customer(id, ['1', '2']) } : { ...product(id) }
}

/** Nested arrays `depth` deep. */
export function deepArray(depth: number): unknown {
  let value: unknown = []
  for (let i = 0; i < depth; i++) value = [value]
  return value
}

const fieldsOf: Record<EntityName, readonly string[]> = {
  customer: ['id', 'name', 'email', 'status', 'productIds', 'updatedAt'],
  product: ['id', 'sku', 'name', 'price', 'stock', 'updatedAt'],
}

/** A value of the wrong type for `field` of `entity`. */
function wrongTypeFor(entity: EntityName, field: string): fc.Arbitrary<unknown> {
  const notString = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.constant({}), fc.constant([]))
  const notNumber = fc.oneof(fc.string(), fc.boolean(), fc.constant(null), fc.constant({}), fc.constant([1]))
  switch (field) {
    case 'id':
      return fc.oneof(
        fc.boolean(),
        fc.constant(null),
        fc.constant({}),
        fc.constant([]),
        fc.integer({ min: -1000, max: -1 }),
        fc.double({ min: 0.1, max: 1e6, noNaN: true }).filter((n) => !Number.isInteger(n)),
        fc.constant(2 ** 60),
        fc.constantFrom('', '   ', '\ud800', 'a\u0000b', 'x\u0085', 'x'.repeat(201)),
      )
    case 'productIds':
      return fc.oneof(
        notNumber.filter((v) => !Array.isArray(v)),
        fc.constant([true]),
        fc.constant([null]),
      )
    case 'price':
      return fc.oneof(notNumber, fc.double({ min: -1e9, max: -0.001, noNaN: true }))
    case 'stock':
      return fc.oneof(notNumber, fc.constant(1.5), fc.constant(2 ** 60))
    case 'updatedAt':
      return fc.oneof(notString, fc.constantFrom('yesterday', '2026-13-01T00:00:00Z', '2026-02-04', ''))
    default:
      return entity === 'customer' && field === 'status'
        ? fc.oneof(notString, fc.constant(''))
        : entity === 'product' && field === 'sku'
          ? fc.oneof(notString, fc.constant(''))
          : notString
  }
}

/** A record that must be dead-lettered (or refused by the consumer), with a pattern of its reason. */
export function hostileRecord(
  entity: EntityName,
  id: string,
): fc.Arbitrary<{ raw: unknown; reason: RegExp }> {
  const fields = fieldsOf[entity]
  const base = validRecord(entity, id)
  const without = fc.constantFrom(...fields).map((field) => {
    const { [field]: _gone, ...rest } = base
    return { raw: rest, reason: new RegExp(`^${field}: `) }
  })
  const wrongType = fc.constantFrom(...fields).chain((field) =>
    wrongTypeFor(entity, field).map((value) => ({
      raw: { ...base, [field]: value },
      reason: new RegExp(`^${field}(\\.\\d+)?: `),
    })),
  )
  const stringField = entity === 'customer' ? 'name' : 'sku'
  const hugeString = fc.integer({ min: 1001, max: 30_000 }).map((length) => ({
    raw: { ...base, [stringField]: 'x'.repeat(length) },
    reason: new RegExp(`^${stringField}: Too big`),
  }))
  const hugeArray =
    entity === 'customer'
      ? fc.integer({ min: 10_001, max: 12_000 }).map((length) => ({
          raw: { ...base, productIds: Array.from({ length }, (_, i) => i) },
          reason: /^productIds: Too big/,
        }))
      : fc.integer({ min: 10_001, max: 12_000 }).map((length) => ({
          raw: { ...base, name: Array.from({ length }, () => 'x') },
          reason: /^name: /,
        }))
  const deep = fc.integer({ min: 1, max: 1000 }).map((depth) => ({
    raw: { ...base, name: deepArray(depth) },
    reason: /^name: /,
  }))
  const notObject = fc
    .oneof(fc.integer(), fc.string({ maxLength: 20 }), fc.constant(null), fc.constant([base]))
    .map((raw) => ({ raw, reason: /^\(record\): / }))
  return fc.oneof(without, wrongType, hugeString, hugeArray, deep, notObject)
}

/** A valid record carrying junk the schema strips: unknown fields, deep or prototype-ish. */
function validWithJunk(entity: EntityName, id: string): fc.Arbitrary<unknown> {
  return fc
    .oneof(
      fc.constant({}),
      fc.integer({ min: 1, max: 1000 }).map((depth) => ({ extra: deepArray(depth) })),
      fc.constant(JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": 1}}')),
      fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }),
    )
    .map((junk) => ({ ...junk, ...validRecord(entity, id) }))
}

/** A listing mixing valid records (unique ids) and hostile ones, as an array or a paged envelope. */
export function hostileListing(entity: EntityName): fc.Arbitrary<HostileCase> {
  return fc
    .array(fc.boolean(), { minLength: 1, maxLength: 12 })
    .chain((goodness) =>
      fc.tuple(
        ...goodness.map((good, i) => {
          const id = `h${i}`
          return good
            ? validWithJunk(entity, id).map((raw) => ({
                raw,
                good: id as string | undefined,
                reason: undefined,
              }))
            : hostileRecord(entity, id).map(({ raw, reason }) => ({
                raw,
                good: undefined as string | undefined,
                reason: reason as RegExp | undefined,
              }))
        }),
      ),
    )
    .chain((items) =>
      fc.constantFrom('array', 'items', 'data').map((wrap): HostileCase => {
        const raws = items.map((item) => item.raw)
        const body = Buffer.from(JSON.stringify(wrap === 'array' ? raws : { [wrap]: raws, next: null }))
        const response = { status: 200, headers: json, body }
        // Enough huge records together outgrow the page limit: then the page fails as a whole.
        if (body.length > HOSTILE_MAX_BYTES)
          return errorCase('listing over the size limit', entity, response, ErrorCodes.SOURCE_TOO_LARGE)
        return {
          kind: 'listing with hostile records',
          entity,
          response,
          expect: {
            kind: 'listing' as const,
            valid: items.flatMap((item) => (item.good === undefined ? [] : [item.good])),
            invalid: items.flatMap((item) => (item.reason === undefined ? [] : [item.reason])),
          },
        }
      }),
    )
}

const goodBody = (entity: EntityName) =>
  fc
    .integer({ min: 0, max: 5 })
    .map((n) =>
      Buffer.from(JSON.stringify(Array.from({ length: n }, (_, i) => validRecord(entity, `g${i}`)))),
    )

const errorCase = (
  kind: string,
  entity: EntityName,
  response: HostileResponse,
  code: string,
): HostileCase => ({
  kind,
  entity,
  response,
  expect: { kind: 'error', code },
})

/** A response that must fail the page with a stable code. */
export function hostilePage(entity: EntityName): fc.Arbitrary<HostileCase> {
  const truncated = goodBody(entity)
    .filter((body) => body.length > 2)
    .chain((body) =>
      fc
        .integer({ min: 0, max: body.length - 1 })
        .map((cut) =>
          errorCase(
            'truncated JSON',
            entity,
            { status: 200, headers: json, body: body.subarray(0, cut) },
            ErrorCodes.SOURCE_NOT_JSON,
          ),
        ),
    )
  const badUtf8 = fc
    .tuple(
      goodBody(entity),
      fc.constantFrom(
        [0xff],
        [0xc0, 0x80],
        [0x80],
        [0xe2, 0x82],
        [0xed, 0xa0, 0x80],
        [0xf4, 0x90, 0x80, 0x80],
        [0xf0, 0x9f, 0x98],
      ),
      fc.nat(),
    )
    .map(([body, bytes, at]) => {
      const cut = at % (body.length + 1)
      return errorCase(
        'invalid UTF-8',
        entity,
        {
          status: 200,
          headers: json,
          body: Buffer.concat([body.subarray(0, cut), Buffer.from(bytes), body.subarray(cut)]),
        },
        ErrorCodes.SOURCE_BAD_ENCODING,
      )
    })
  const html = fc
    .tuple(
      fc.constantFrom(
        'text/html; charset=utf-8',
        'text/html',
        '',
        'text/plain',
        'application/xml',
        'application/jsonx-not',
      ),
      fc.constantFrom(
        '<html><body>Please log in</body></html>',
        '<!doctype html>\n<h1>502 Bad Gateway</h1>',
        '',
      ),
    )
    .map(([type, text]) =>
      errorCase(
        'HTML error page with 200',
        entity,
        { status: 200, headers: type === '' ? {} : { 'content-type': type }, body: Buffer.from(text) },
        ErrorCodes.SOURCE_NOT_JSON,
      ),
    )
  const htmlAsJson = fc
    .constantFrom(
      '<html><body>Error</body></html>',
      'Internal Server Error',
      '{"items": [',
      'undefined',
      "{'a': 1}",
      'NaN',
    )
    .map((text) =>
      errorCase(
        'not JSON labelled JSON',
        entity,
        { status: 200, headers: json, body: Buffer.from(text) },
        ErrorCodes.SOURCE_NOT_JSON,
      ),
    )
  const gzipLie = fc
    .tuple(
      goodBody(entity),
      fc.constantFrom('gzip', 'br', 'deflate', 'x-gzip', 'GZIP', 'compress'),
      fc.boolean(),
    )
    .map(([body, encoding, reallyGzipped]) =>
      errorCase(
        'content-encoding lie or bomb',
        entity,
        {
          status: 200,
          headers: { ...json, 'content-encoding': encoding },
          body: reallyGzipped ? gzipSync(body) : body,
        },
        ErrorCodes.SOURCE_BAD_ENCODING,
      ),
    )
  const wrongShape = fc
    .oneof(
      fc.constant(null),
      fc.integer(),
      fc.string({ maxLength: 30 }),
      fc.boolean(),
      fc.constant({}),
      fc.constant({ items: 'not an array' }),
      fc.constant({ customers: [] }),
      fc.constant({ items: [], page: 1.5, pageSize: 10, total: 20 }),
      fc.constant({ items: [], page: 1, pageSize: 0, total: 20 }),
      fc.constant({ items: [], page: -1, pageSize: 10, total: 20 }),
      fc.constant({ items: [], cursor: { next: 1 } }),
      fc.constant({ items: [], next: 42 }),
      fc.constant({ items: [], next: 'http://evil.test/steal-the-token' }),
      fc.constant({ items: [], next: 'http://[broken' }),
    )
    .map((value) =>
      errorCase(
        'wrong shape or unusable paging',
        entity,
        { status: 200, headers: json, body: Buffer.from(JSON.stringify(value)) },
        ErrorCodes.SOURCE_BAD_SHAPE,
      ),
    )
  const tooLarge = fc.integer({ min: HOSTILE_MAX_BYTES + 1, max: 4 * HOSTILE_MAX_BYTES }).map((size) => {
    const padding = 'x'.repeat(size)
    return errorCase(
      'oversized body',
      entity,
      { status: 200, headers: json, body: Buffer.from(JSON.stringify([{ id: '1', pad: padding }])) },
      ErrorCodes.SOURCE_TOO_LARGE,
    )
  })
  return fc.oneof(truncated, badUtf8, html, htmlAsJson, gzipLie, wrongShape, tooLarge)
}

/** A short description of a case, for fast-check's counterexample report (bodies can be megabytes). */
function describeCase(c: HostileCase): string {
  const head = c.response.body.subarray(0, 120).toString('latin1')
  return `${c.kind} (${c.entity}): HTTP ${c.response.status} ${JSON.stringify(c.response.headers)}, ${c.response.body.length} bytes ${JSON.stringify(head)}…`
}

/** Any hostile response, for either entity. */
export const hostileSourceCase: fc.Arbitrary<HostileCase> = fc
  .constantFrom<EntityName>('customer', 'product')
  .chain((entity) =>
    fc.oneof({ weight: 2, arbitrary: hostileListing(entity) }, { weight: 3, arbitrary: hostilePage(entity) }),
  )
  .map((c) => Object.assign(c, { [fc.toStringMethod]: () => describeCase(c) }))
