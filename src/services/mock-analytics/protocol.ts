/**
 * What the mock Analytics service accepts as input, validated without I/O: idempotency keys, JSON
 * records, batches, query strings and fault rules. Every rejection is one line naming what was wrong,
 * because it ends up in the `{ error }` body a failing test prints.
 */
import { z } from 'zod'
import type { FaultRule } from './faults.ts'
import { viewIdentityOf } from './store.ts'

/** A validated value, or the one-line reason it was refused. */
export type Parsed<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: string }

/** The form every idempotency key must have, as said in errors. */
const KEY_FORM = '<viewType>:<id>:<contentHash>'

/** Validates an `Idempotency-Key` header value (node gives an array only for repeated headers). */
export function parseIdempotencyKey(header: string | string[] | undefined): Parsed<string> {
  if (header === undefined || header === '') {
    return { ok: false, error: `missing Idempotency-Key header (expected ${KEY_FORM})` }
  }
  if (typeof header !== 'string' || viewIdentityOf(header) === undefined) {
    return { ok: false, error: `Idempotency-Key ${JSON.stringify(header)} is not ${KEY_FORM}` }
  }
  return { ok: true, value: header }
}

/** Parses a request body as JSON; the error carries the parser's own account of the problem. */
export function parseJson(body: Buffer): Parsed<unknown> {
  try {
    return { ok: true, value: JSON.parse(body.toString('utf8')) }
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    return { ok: false, error: `invalid JSON body: ${reason}` }
  }
}

/** Parses a delivered record: JSON, and an object (a view), not an array or a scalar. */
export function parseRecord(body: Buffer): Parsed<unknown> {
  const parsed = parseJson(body)
  if (!parsed.ok || isJsonObject(parsed.value)) return parsed
  return { ok: false, error: `record must be a JSON object, got ${jsonKind(parsed.value)}` }
}

function isJsonObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function jsonKind(value: unknown): string {
  if (value === null) return 'null'
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`
}

/** Joins zod's issues into one line: `items.0.record: expected object, received string; …`. */
function describeIssues(what: string, error: z.ZodError): string {
  const problems = error.issues.map((issue) => {
    const where = issue.path.length > 0 ? issue.path.join('.') : what
    return `${where}: ${issue.message}`
  })
  return `invalid ${what}: ${problems.join('; ')}`
}

function parseWith<S extends z.ZodType>(schema: S, what: string, input: unknown): Parsed<z.output<S>> {
  const result = schema.safeParse(input)
  return result.success
    ? { ok: true, value: result.data }
    : { ok: false, error: describeIssues(what, result.error) }
}

const batchSchema = z.strictObject({
  items: z.array(
    z.strictObject({
      idempotencyKey: z.string().refine((key) => viewIdentityOf(key) !== undefined, {
        message: `must be ${KEY_FORM}`,
      }),
      record: z.record(z.string(), z.unknown()),
    }),
  ),
})

/** One delivery of a batch. */
export interface BatchItem {
  readonly idempotencyKey: string
  readonly record: unknown
}

/** Validates a parsed batch body `{ items: [{ idempotencyKey, record }] }` as a whole. */
export function parseBatch(body: unknown): Parsed<readonly BatchItem[]> {
  const parsed = parseWith(batchSchema, 'batch', body)
  return parsed.ok ? { ok: true, value: parsed.value.items } : parsed
}

/** Largest page of `GET /analytics/records`, so one request cannot serialize the whole log. */
export const MAX_RECORDS_PAGE = 10_000

const pageSchema = z.strictObject({
  offset: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(MAX_RECORDS_PAGE).default(100),
})

/** A page of the record log. */
export interface Page {
  readonly offset: number
  readonly limit: number
}

/** Parses the query string (without '?') of `GET /analytics/records`. */
export function parsePage(query: string): Parsed<Page> {
  return parseWith(pageSchema, 'query', Object.fromEntries(new URLSearchParams(query)))
}

const faultRuleSchema = z
  .strictObject({
    status: z.number().int().min(200).max(599).optional(),
    count: z.number().int().positive().optional(),
    delayMs: z.number().int().min(0).max(600_000).optional(),
    drop: z.boolean().optional(),
    retryAfter: z.union([z.string().min(1), z.number().int().nonnegative()]).optional(),
    match: z.string().min(1).optional(),
  })
  .refine((rule) => rule.status !== undefined || rule.drop === true || rule.delayMs !== undefined, {
    message: 'needs at least one of status, drop or delayMs',
  })
  .refine((rule) => !(rule.drop === true && rule.status !== undefined), {
    message: 'drop and status exclude each other: a dropped connection answers no status',
  })
  .refine((rule) => rule.retryAfter === undefined || rule.status !== undefined, {
    message: 'retryAfter is sent with a status, so it needs status',
  })

/** Validates the body of `POST /control/faults`, so a typo fails the test that made it. */
export function parseFaultRule(body: unknown): Parsed<FaultRule> {
  return parseWith(faultRuleSchema, 'fault rule', body)
}
