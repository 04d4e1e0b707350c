/**
 * The control API (`/control/...`): request bodies validated with zod, routed to the {@link Simulator}.
 * Transport-free: the server hands over the method, the path below `/control` and the parsed body.
 */
import { z } from 'zod'
import type { FaultRule } from './faults.ts'
import { pagingStyles } from './paging.ts'
import { type CollectionName, type Customer, collectionNames, type Product } from './records.ts'
import type { Simulator } from './simulator.ts'

/** What to send back: a status and, except for 204, a JSON body. */
export interface ControlResponse {
  readonly status: number
  readonly body?: unknown
}

const count = z.number().int().min(0).max(10_000_000)
const entityId = z.union([z.string().min(1), z.number().int()])
const pagingStyle = z.enum(pagingStyles)

const customerFields = {
  name: z.string(),
  email: z.string(),
  status: z.string(),
  productIds: z.array(z.string()),
}
const productFields = {
  sku: z.string(),
  name: z.string(),
  price: z.number(),
  stock: z.number().int(),
}

/**
 * Every field optional but never `undefined` (`exactOptionalPropertyTypes`); JSON cannot carry
 * undefined anyway, and `.partial()` would type it in.
 */
function exactPartial<S extends Record<string, z.ZodType>>(shape: S) {
  const optional = Object.fromEntries(
    Object.entries(shape).map(([key, schema]) => [key, schema.exactOptional()]),
  )
  return z.strictObject(optional as { [K in keyof S]: z.ZodExactOptional<S[K]> })
}

/** Fields a request may leave out of a whole record: the id comes from the path, `updatedAt` from the clock. */
const defaultable = { id: entityId.exactOptional(), updatedAt: z.string().exactOptional() }

/** `PUT /control/customers/:id`: a whole customer. */
export const customerBody = z.strictObject({ ...customerFields, ...defaultable })

/** `PUT /control/products/:id`: a whole product. */
export const productBody = z.strictObject({ ...productFields, ...defaultable })

/** `PATCH /control/customers/:id`: any fields but the id. */
export const customerPatch = exactPartial({ ...customerFields, updatedAt: z.string() })

/** `PATCH /control/products/:id`: any fields but the id. */
export const productPatch = exactPartial({ ...productFields, updatedAt: z.string() })

/** `POST /control/mutate`. */
export const mutateBody = z.strictObject({
  changes: count.exactOptional(),
  deletions: count.exactOptional(),
  creations: count.exactOptional(),
  seed: z.number().int().exactOptional(),
  collection: z.enum(['customers', 'products', 'both']).exactOptional(),
})

/** `POST /control/dataset`. */
export const datasetBody = z.strictObject({
  customers: count,
  products: count,
  seed: z.number().int(),
  productsPerCustomer: z
    .strictObject({ min: z.number().int().min(0), max: z.number().int().min(0) })
    .refine((r) => r.min <= r.max, 'min must not exceed max')
    .exactOptional(),
  numericIdShare: z.number().min(0).max(1).exactOptional(),
})

/** One rule of `POST /control/faults`. */
export const faultRule = z
  .strictObject({
    path: z.enum(['/customers', '/products']).exactOptional(),
    page: z.number().int().min(1).exactOptional(),
    status: z.number().int().min(100).max(599).exactOptional(),
    count: z.number().int().min(1).exactOptional(),
    delayMs: z.number().int().min(0).max(3_600_000).exactOptional(),
    retryAfter: z.union([z.string().min(1), z.number().int().min(0)]).exactOptional(),
    body: z.string().exactOptional(),
    contentType: z.string().min(1).exactOptional(),
    drop: z.boolean().exactOptional(),
    slowBodyMs: z.number().int().min(1).max(600_000).exactOptional(),
    slowBodyChunks: z.number().int().min(1).max(10_000).exactOptional(),
    invalidRecords: z.number().int().min(1).max(10_000).exactOptional(),
  })
  .refine((rule) => Object.keys(rule).some((key) => key !== 'path' && key !== 'page' && key !== 'count'), {
    message: 'a fault rule needs at least one effect (status, delayMs, body, drop, …)',
  })

/** `POST` / `PUT /control/faults`: one rule or a list (parsed apart, so errors name the rule's field). */
function parseFaults(body: unknown): FaultRule[] {
  return Array.isArray(body) ? parse(z.array(faultRule), body) : [parse(faultRule, body)]
}

/** `PATCH /control/settings`. */
export const settingsBody = z.strictObject({
  paging: z
    .strictObject({ customers: pagingStyle.exactOptional(), products: pagingStyle.exactOptional() })
    .exactOptional(),
  pageSize: z.number().int().min(1).max(100_000).exactOptional(),
  maxPageSize: z.number().int().min(1).max(100_000).exactOptional(),
  nextLinks: z.enum(['relative', 'absolute']).exactOptional(),
  token: z.string().min(1).nullable().exactOptional(),
})

/** One line naming every problem, e.g. `price: expected number, received string`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; ')
}

class BadRequest extends Error {}

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  if (body === undefined) throw new BadRequest('a JSON body is required')
  const result = schema.safeParse(body)
  if (!result.success) throw new BadRequest(describeIssues(result.error))
  return result.data
}

const ok = (body: unknown): ControlResponse => ({ status: 200, body })
const notFound = (message: string): ControlResponse => ({ status: 404, body: { error: message } })

function recordRoute(
  sim: Simulator,
  method: string,
  name: CollectionName,
  key: string,
  body: unknown,
  now: () => string,
): ControlResponse {
  const missing = () => notFound(`no ${name} record with id ${JSON.stringify(key)}`)
  switch (method) {
    case 'GET': {
      const record = sim.get(name, key)
      return record === undefined ? missing() : ok(record)
    }
    case 'DELETE':
      return sim.remove(name, key) ? { status: 204 } : missing()
    case 'PATCH': {
      const record =
        name === 'customers'
          ? sim.patch('customers', key, parse(customerPatch, body))
          : sim.patch('products', key, parse(productPatch, body))
      return record === undefined ? missing() : ok(record)
    }
    case 'PUT': {
      const fields = name === 'customers' ? parse(customerBody, body) : parse(productBody, body)
      if (fields.id !== undefined && String(fields.id) !== key) {
        throw new BadRequest(
          `id: ${JSON.stringify(fields.id)} does not match the path's id ${JSON.stringify(key)}`,
        )
      }
      const record = { ...fields, id: fields.id ?? key, updatedAt: fields.updatedAt ?? now() }
      const outcome =
        name === 'customers'
          ? sim.put('customers', record as Customer)
          : sim.put('products', record as Product)
      return { status: outcome === 'created' ? 201 : 200, body: record }
    }
    default:
      return { status: 405, body: { error: `${method} is not allowed on /control/${name}/:id` } }
  }
}

/**
 * Answers one control request.
 * @param path the path below `/control`, e.g. `/customers/7` (still percent-encoded).
 * @param body the parsed JSON body, or undefined when the request had none.
 */
export function handleControl(
  sim: Simulator,
  method: string,
  path: string,
  body: unknown,
  now: () => number = Date.now,
): ControlResponse {
  try {
    const [, first = '', second, ...rest] = path.split('/')
    const name = collectionNames.find((n) => n === first)
    if (name !== undefined && second !== undefined && second !== '' && rest.length === 0) {
      const stamp = () => new Date(now()).toISOString()
      return recordRoute(sim, method, name, decodeURIComponent(second), body, stamp)
    }
    const route = `${method} ${path}`
    switch (route) {
      case 'GET /state':
        return ok(sim.state())
      case 'GET /snapshot':
        return ok(sim.snapshot())
      case 'GET /settings':
        return ok(redacted(sim))
      case 'PATCH /settings':
        sim.configure(parse(settingsBody, body))
        return ok(redacted(sim))
      case 'POST /mutate':
        return ok(sim.mutate(parse(mutateBody, body)))
      case 'POST /dataset':
        return ok(sim.replaceDataset(parse(datasetBody, body)))
      case 'GET /faults':
        return ok(sim.faults())
      case 'POST /faults':
        sim.addFaults(parseFaults(body))
        return ok(sim.faults())
      case 'PUT /faults':
        return ok(sim.setFaults(parseFaults(body)))
      case 'DELETE /faults':
        sim.clearFaults()
        return { status: 204 }
      case 'GET /requests':
        return ok(sim.requests())
      case 'DELETE /requests':
        sim.resetRequests()
        return { status: 204 }
      default:
        return notFound(`no control route ${route}`)
    }
  } catch (error) {
    if (error instanceof BadRequest) return { status: 400, body: { error: error.message } }
    if (error instanceof URIError)
      return { status: 400, body: { error: 'the id in the path is not valid percent-encoding' } }
    if (error instanceof RangeError) return { status: 400, body: { error: error.message } }
    throw error
  }
}

/** Settings without the token's value: the control API is unauthenticated. */
function redacted(sim: Simulator): unknown {
  const settings = sim.settings()
  return { ...settings, token: settings.token === null ? null : '***' }
}
