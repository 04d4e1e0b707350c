/**
 * The OpenAPI document is what Prism serves as CRM and Inventory, so its examples are the data every local run
 * and integration test starts from. These checks keep the examples true to their schemas and to the brief.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { parse } from 'yaml'
import { customerSchema, productSchema } from '../../src/domain/records.ts'

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type JsonObject = { [key: string]: Json }

const specUrl = new URL('../../openapi/crm-inventory.yaml', import.meta.url)
const spec = parse(readFileSync(specUrl, 'utf8')) as JsonObject

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function obj(value: Json | undefined, where: string): JsonObject {
  assert.ok(isObject(value), `${where} should be an object`)
  return value
}

/** Walks a path of keys, failing with the path when a step is missing. */
function at(root: Json, ...path: string[]): Json {
  let node: Json | undefined = root
  for (const [i, key] of path.entries()) {
    node = obj(node, path.slice(0, i).join('.') || 'document')[key]
    assert.notEqual(node, undefined, `${path.slice(0, i + 1).join('.')} is missing from the spec`)
  }
  return node as Json
}

function resolve(schema: JsonObject): JsonObject {
  const ref = schema.$ref
  if (typeof ref !== 'string') return schema
  assert.ok(ref.startsWith('#/'), `only local $refs are expected, got ${ref}`)
  return resolve(obj(at(spec, ...ref.slice(2).split('/')), ref))
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/

function typeOf(value: Json): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number'
  return typeof value
}

/**
 * Validates a value against the subset of OpenAPI 3.0 schema keywords the spec uses, returning every
 * violation with its path. Small on purpose: enough to prove the examples honour their schemas.
 */
function validate(value: Json, rawSchema: JsonObject, path = '$'): string[] {
  const schema = resolve(rawSchema)
  const errors: string[] = []
  if (Array.isArray(schema.oneOf)) {
    const matching = schema.oneOf.filter((s) => validate(value, obj(s, `${path} oneOf`), path).length === 0)
    if (matching.length !== 1) errors.push(`${path}: matches ${matching.length} oneOf branches, expected 1`)
    return errors
  }
  const actual = typeOf(value)
  if (typeof schema.type === 'string') {
    const ok = schema.type === actual || (schema.type === 'number' && actual === 'integer')
    if (!ok) return [`${path}: is ${actual}, expected ${schema.type}`]
  }
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) {
    errors.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`)
  }
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) errors.push(`${path}: below minimum`)
    if (typeof schema.maximum === 'number' && value > schema.maximum) errors.push(`${path}: above maximum`)
  }
  if (typeof value === 'string') {
    if (typeof schema.minLength === 'number' && value.length < schema.minLength)
      errors.push(`${path}: too short`)
    if (typeof schema.maxLength === 'number' && value.length > schema.maxLength)
      errors.push(`${path}: too long`)
    if (schema.format === 'email' && !EMAIL.test(value)) errors.push(`${path}: not an email`)
    if (schema.format === 'date-time' && (!DATE_TIME.test(value) || Number.isNaN(Date.parse(value)))) {
      errors.push(`${path}: not an RFC 3339 date-time`)
    }
  }
  if (Array.isArray(value) && isObject(schema.items)) {
    const items = schema.items
    value.forEach((item, i) => {
      errors.push(...validate(item, items, `${path}[${i}]`))
    })
  }
  if (isObject(value)) {
    const required = Array.isArray(schema.required) ? schema.required : []
    for (const name of required) {
      if (typeof name === 'string' && !(name in value))
        errors.push(`${path}: required field ${name} is missing`)
    }
    const properties = isObject(schema.properties) ? schema.properties : {}
    for (const [name, sub] of Object.entries(properties)) {
      const field = value[name]
      if (field !== undefined)
        errors.push(...validate(field, obj(sub, `${path}.${name} schema`), `${path}.${name}`))
    }
  }
  return errors
}

function operation(path: string): JsonObject {
  return obj(at(spec, 'paths', path, 'get'), `GET ${path}`)
}

function okContent(path: string): JsonObject {
  return obj(
    at(operation(path), 'responses', '200', 'content', 'application/json'),
    `GET ${path} 200 content`,
  )
}

/** Prism's static mode answers with the first named example, so that one is the one checked. */
function sample(path: string): Json[] {
  const examples = obj(at(okContent(path), 'examples'), `GET ${path} examples`)
  const first = Object.values(examples)[0]
  const value = at(obj(first, `GET ${path} first example`), 'value')
  assert.ok(Array.isArray(value), `the example of GET ${path} should be an array`)
  return value
}

function schemaOf(path: string): JsonObject {
  return obj(at(okContent(path), 'schema'), `GET ${path} 200 schema`)
}

function requiredOf(name: string): string[] {
  const required = at(spec, 'components', 'schemas', name, 'required')
  assert.ok(Array.isArray(required), `${name}.required should be a list`)
  return required.filter((r): r is string => typeof r === 'string')
}

const customers = sample('/customers')
const products = sample('/products')

test('the spec is OpenAPI 3.0.x or 3.1.x, which Prism 5 serves', () => {
  assert.match(String(spec.openapi), /^3\.(0|1)\.\d+$/)
})

test('the customer example validates against the /customers schema', () => {
  assert.deepEqual(validate(customers, schemaOf('/customers')), [])
})

test('the product example validates against the /products schema', () => {
  assert.deepEqual(validate(products, schemaOf('/products')), [])
})

/** Asserts the schema rejects a value, and for the reason given (the error names the field). */
function assertRejects(value: Json, schema: JsonObject, field: string, why: string): void {
  const errors = validate(value, schema)
  assert.ok(
    errors.some((e) => e.includes(field)),
    `${why}: expected an error about ${field}, got ${JSON.stringify(errors)}`,
  )
}

test('the validator rejects examples that break the schemas (so the checks above can fail)', () => {
  const product = obj(products[0], 'first product')
  const customer = obj(customers[0], 'first customer')
  const productSchema = schemaOf('/products')
  const customerSchema = schemaOf('/customers')
  assertRejects([{ ...product, price: -1 }], productSchema, '.price', 'a negative price')
  assertRejects([{ ...product, stock: 1.5 }], productSchema, '.stock', 'a fractional stock')
  assertRejects([{ ...product, stock: -3 }], productSchema, '.stock', 'a negative stock')
  assertRejects([{ ...customer, status: 'gone' }], customerSchema, '.status', 'an unknown status')
  assertRejects([{ ...customer, email: 'nope' }], customerSchema, '.email', 'a malformed email')
  assertRejects([{ ...customer, updatedAt: 'yesterday' }], customerSchema, '.updatedAt', 'a bad date-time')
  assertRejects([{ ...customer, id: true }], customerSchema, '.id', 'a boolean id')
  assertRejects([{ ...customer, productIds: [100] }], customerSchema, '.productIds[0]', 'a numeric productId')
  const { sku: _sku, ...withoutSku } = product
  assertRejects([withoutSku], productSchema, 'required field sku', 'a missing required field')
})

test('ids may be integers or strings', () => {
  const schema = schemaOf('/products')
  const [first] = products
  const product = obj(first, 'first product')
  assert.deepEqual(validate([{ ...product, id: 'P-100' }], schema), [], 'a string id is valid')
  assert.deepEqual(validate([{ ...product, id: 100 }], schema), [], 'an integer id is valid')
})

test('the customer example is the brief sample: customers 1 and 2, each with productIds', () => {
  assert.deepEqual(
    customers.map((c) => String(obj(c, 'customer').id)),
    ['1', '2'],
  )
  for (const c of customers) {
    const ids = obj(c, 'customer').productIds
    assert.ok(
      Array.isArray(ids) && ids.length > 0,
      `customer ${String(obj(c, 'customer').id)} needs productIds`,
    )
  }
})

test('the product example is the brief sample: products 100 and 200', () => {
  assert.deepEqual(
    products.map((p) => String(obj(p, 'product').id)),
    ['100', '200'],
  )
})

test('every productId of the customer examples refers to an example product', () => {
  const known = new Set(products.map((p) => String(obj(p, 'product').id)))
  for (const c of customers) {
    const customer = obj(c, 'customer')
    const ids = customer.productIds
    assert.ok(Array.isArray(ids), `customer ${String(customer.id)} productIds should be a list`)
    for (const id of ids) {
      assert.equal(typeof id, 'string', `productIds are strings (customer ${String(customer.id)})`)
      assert.ok(
        known.has(String(id)),
        `customer ${String(customer.id)} refers to unknown product ${String(id)}`,
      )
    }
  }
})

test('every required field of Customer and Product is present in every example record', () => {
  for (const [name, records] of [
    ['Customer', customers],
    ['Product', products],
  ] as const) {
    const required = requiredOf(name)
    assert.ok(required.length > 0, `${name} should declare required fields`)
    for (const record of records) {
      const r = obj(record, name)
      for (const field of required) {
        assert.ok(field in r, `${name} ${String(r.id)} lacks required field ${field}`)
      }
    }
  }
})

test('the design fields are required: customers and products carry the whole §3 record', () => {
  assert.deepEqual(
    new Set(requiredOf('Customer')),
    new Set(['id', 'name', 'email', 'status', 'productIds', 'updatedAt']),
  )
  assert.deepEqual(
    new Set(requiredOf('Product')),
    new Set(['id', 'sku', 'name', 'price', 'stock', 'updatedAt']),
  )
})

test('both operations document 200, 304, 429 and 5xx, errors with the Error schema', () => {
  for (const path of ['/customers', '/products']) {
    const responses = obj(at(operation(path), 'responses'), `GET ${path} responses`)
    for (const code of ['200', '304', '429']) assert.ok(code in responses, `GET ${path} documents ${code}`)
    const serverErrors = Object.keys(responses).filter((code) => /^5(\d\d|XX)$/.test(code))
    assert.ok(serverErrors.length > 0, `GET ${path} documents a 5xx response`)
    for (const code of ['429', ...serverErrors]) {
      const response = resolve(obj(responses[code], `GET ${path} ${code}`))
      const schema = obj(at(response, 'content', 'application/json', 'schema'), `GET ${path} ${code} schema`)
      assert.equal(schema.$ref, '#/components/schemas/Error', `GET ${path} ${code} uses the Error schema`)
      const example = at(response, 'content', 'application/json', 'example')
      assert.deepEqual(validate(example, schema), [], `GET ${path} ${code} example validates`)
    }
    const notModified = resolve(obj(responses['304'], `GET ${path} 304`))
    assert.equal(notModified.content, undefined, `GET ${path} 304 has no body`)
  }
})

test('page and pageSize are optional query parameters of both operations', () => {
  for (const path of ['/customers', '/products']) {
    const params = at(operation(path), 'parameters')
    assert.ok(Array.isArray(params), `GET ${path} parameters should be a list`)
    const resolved = params.map((p) => resolve(obj(p, `GET ${path} parameter`)))
    for (const name of ['page', 'pageSize']) {
      const param = resolved.find((p) => p.name === name)
      assert.ok(param, `GET ${path} documents ${name}`)
      assert.equal(param.in, 'query', `${name} is a query parameter`)
      assert.notEqual(param.required, true, `${name} is optional`)
    }
  }
})

test('the bearer scheme is documented but not required, so Prism answers without a token', () => {
  const scheme = obj(at(spec, 'components', 'securitySchemes', 'bearerAuth'), 'bearerAuth')
  assert.equal(scheme.type, 'http')
  assert.equal(scheme.scheme, 'bearer')
  for (const path of ['/customers', '/products']) {
    const security = operation(path).security ?? spec.security
    assert.ok(Array.isArray(security), `GET ${path} should declare its security alternatives`)
    const alternatives = security.map((r) => Object.keys(obj(r, 'security requirement')))
    assert.ok(
      alternatives.some((keys) => keys.length === 0),
      `GET ${path} security should allow no credentials ({})`,
    )
    assert.ok(
      alternatives.some((keys) => keys.includes('bearerAuth')),
      `GET ${path} security should offer bearerAuth`,
    )
  }
})

test('the producer accepts every record Prism serves (src/domain/records.ts)', () => {
  for (const c of customers) {
    const result = customerSchema.safeParse(c)
    assert.ok(
      result.success,
      `customer example ${JSON.stringify(c)} fails the domain schema: ${result.error}`,
    )
  }
  for (const p of products) {
    const result = productSchema.safeParse(p)
    assert.ok(result.success, `product example ${JSON.stringify(p)} fails the domain schema: ${result.error}`)
  }
})
