/**
 * Source record schemas (design §3) and the Kafka envelope. Ids arrive as numbers or strings and
 * leave as strings: they are Kafka keys.
 */
import { z } from 'zod'

/** Version of the envelope and record shapes below; bump on an incompatible change. */
export const SCHEMA_VERSION = 1

// An id is a Kafka key, written as UTF-8: a lone surrogate would reach the consumer as U+FFFD and no
// longer match the envelope's id, and control characters break log lines and sink keys.
const idText = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .refine((text) => text.isWellFormed() && !/\p{Cc}/u.test(text), {
    message: 'must be well-formed Unicode without control characters',
  })

const id = z.union([idText, z.number().int().nonnegative()]).transform(String)

const timestamp = z.iso.datetime({ offset: true })

/** A CRM customer as published. */
export const customerSchema = z.object({
  id,
  name: z.string().max(1000),
  email: z.string().max(320),
  status: z.string().min(1).max(100),
  productIds: z.array(id).max(10_000),
  updatedAt: timestamp,
})

/** An Inventory product as published. */
export const productSchema = z.object({
  id,
  sku: z.string().min(1).max(200),
  name: z.string().max(1000),
  price: z.number().finite().nonnegative(),
  stock: z.number().int(),
  updatedAt: timestamp,
})

/** A validated customer. */
export type Customer = z.output<typeof customerSchema>
/** A validated product. */
export type Product = z.output<typeof productSchema>

/** The entities the pipeline knows, with their schema. A new source adds a line here. */
export const entitySchemas = {
  customer: customerSchema,
  product: productSchema,
} as const

/** Name of a known entity. */
export type EntityName = keyof typeof entitySchemas

/** A validated record of any entity: at least a string id. */
export interface EntityRecord {
  readonly id: string
  readonly [field: string]: unknown
}

/** The value of a message on a source topic (null value = tombstone, not this). */
export interface Envelope<T extends EntityRecord = EntityRecord> {
  readonly schemaVersion: number
  /** Source name, e.g. `crm`. */
  readonly source: string
  readonly entity: EntityName
  readonly id: string
  readonly data: T
  /** SHA-256 of the canonical JSON of `data`. */
  readonly contentHash: string
  /** When the poll that saw this version started (ISO 8601); carried to the sink for latency. */
  readonly polledAt: string
}

/** The outcome of validating one raw record. */
export type Validation<T> = { ok: true; record: T } | { ok: false; reason: string }

/*
 * Fast paths. zod costs a few microseconds per record (the id union with its transform, on the id
 * and on every productIds entry, and the datetime check dominate), which a 100k-record scan pays
 * in full. The common shape is checked by hand instead; anything the hand checks are not sure
 * about — an error, but also an unusual valid value — goes to the zod schemas above, which stay
 * the authority on what is valid and on every reason given. So a fast path only ever accepts what
 * its schema accepts, with the same output (a unit test compares them on generated records).
 * Records are built with their keys in sorted order: their canonical JSON is then a plain
 * JSON.stringify (see canonical.ts).
 */

/** The datetime pattern of the `timestamp` schema itself, so both paths accept the same strings. */
const timestampPattern: RegExp = (() => {
  const pattern = timestamp._zod.pattern
  if (!(pattern instanceof RegExp)) throw new Error('zod no longer exposes the datetime pattern')
  return pattern
})()

/**
 * 1 to 200 printable ASCII characters, none at either end a space: such a string is its own trim,
 * well-formed and free of control characters, so the `id` schema returns it unchanged.
 */
const plainId = /^[\x21-\x7e](?:[\x20-\x7e]{0,198}[\x21-\x7e])?$/

/** The output of the `id` schema, or undefined where zod must decide. */
function fastId(value: unknown): string | undefined {
  if (typeof value === 'string') return plainId.test(value) ? value : undefined
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return String(value)
  return undefined
}

const isString = (value: unknown, min: number, max: number): value is string =>
  typeof value === 'string' && value.length >= min && value.length <= max

const isTimestamp = (value: unknown): value is string =>
  typeof value === 'string' && timestampPattern.test(value)

function isPlainObject(raw: unknown): raw is Record<string, unknown> {
  return raw !== null && typeof raw === 'object' && !Array.isArray(raw)
}

function fastCustomer(raw: unknown): Customer | undefined {
  if (!isPlainObject(raw)) return undefined
  const { email, name, productIds, status, updatedAt } = raw
  const id = fastId(raw.id)
  if (
    id === undefined ||
    !isString(name, 0, 1000) ||
    !isString(email, 0, 320) ||
    !isString(status, 1, 100) ||
    !Array.isArray(productIds) ||
    productIds.length > 10_000 ||
    !isTimestamp(updatedAt)
  ) {
    return undefined
  }
  const ids: string[] = new Array(productIds.length)
  for (let i = 0; i < productIds.length; i++) {
    const productId = fastId(productIds[i])
    if (productId === undefined) return undefined
    ids[i] = productId
  }
  return { email, id, name, productIds: ids, status, updatedAt }
}

function fastProduct(raw: unknown): Product | undefined {
  if (!isPlainObject(raw)) return undefined
  const { name, price, sku, stock, updatedAt } = raw
  const id = fastId(raw.id)
  if (
    id === undefined ||
    typeof price !== 'number' ||
    !Number.isFinite(price) ||
    // -0 passes zod as -0; JSON turns it into 0, so leave that oddity to zod's own output.
    !(price > 0 || Object.is(price, 0)) ||
    !isString(sku, 1, 200) ||
    !isString(name, 0, 1000) ||
    !Number.isSafeInteger(stock) ||
    !isTimestamp(updatedAt)
  ) {
    return undefined
  }
  return { id, name, price, sku, stock: stock as number, updatedAt }
}

const fastPaths: {
  readonly [E in EntityName]: (raw: unknown) => z.output<(typeof entitySchemas)[E]> | undefined
} = { customer: fastCustomer, product: fastProduct }

/**
 * Validates one raw record against its entity schema, returning a one-line reason on failure
 * (the first problems, with their paths), never throwing. A valid record comes back with only
 * the schema's fields, ids as strings.
 */
export function validateRecord(entity: EntityName, raw: unknown): Validation<EntityRecord> {
  const fast = fastPaths[entity](raw)
  if (fast !== undefined) return { ok: true, record: fast }
  const result = entitySchemas[entity].safeParse(raw)
  if (result.success) return { ok: true, record: result.data }
  const reason = result.error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(record)'}: ${issue.message}`)
    .join('; ')
  return { ok: false, reason }
}

/** The zod schema of a whole envelope, for consumers that must not trust their input. */
export const envelopeSchema = z.object({
  schemaVersion: z.number().int().positive(),
  source: z.string().min(1),
  entity: z.enum(Object.keys(entitySchemas) as [EntityName, ...EntityName[]]),
  id: z.string().min(1),
  data: z.record(z.string(), z.unknown()),
  contentHash: z.string().regex(/^[0-9a-f]{64}$/),
  polledAt: timestamp,
})

/** An envelope as {@link envelopeSchema} outputs it. */
export type DecodedEnvelope = z.output<typeof envelopeSchema>

const contentHashPattern = /^[0-9a-f]{64}$/

/**
 * {@link envelopeSchema}'s output for a plainly valid envelope, or undefined where zod must decide
 * (and name the problem): the consumer decodes every source message, and zod was a fifth of that.
 * A property test holds both to the same verdict and output.
 */
export function fastEnvelope(raw: unknown): DecodedEnvelope | undefined {
  if (!isPlainObject(raw)) return undefined
  const { schemaVersion, source, entity, id, data, contentHash, polledAt } = raw
  if (
    typeof schemaVersion !== 'number' ||
    !Number.isSafeInteger(schemaVersion) ||
    schemaVersion < 1 ||
    !isString(source, 1, Number.MAX_SAFE_INTEGER) ||
    typeof entity !== 'string' ||
    !Object.hasOwn(entitySchemas, entity) ||
    !isString(id, 1, Number.MAX_SAFE_INTEGER) ||
    !isPlainObject(data) ||
    Object.getPrototypeOf(data) !== Object.prototype ||
    typeof contentHash !== 'string' ||
    !contentHashPattern.test(contentHash) ||
    !isTimestamp(polledAt)
  )
    return undefined
  return { schemaVersion, source, entity: entity as EntityName, id, data, contentHash, polledAt }
}
