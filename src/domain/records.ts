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

/**
 * Validates one raw record against its entity schema, returning a one-line reason on failure
 * (the first problems, with their paths), never throwing.
 */
export function validateRecord(entity: EntityName, raw: unknown): Validation<EntityRecord> {
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
