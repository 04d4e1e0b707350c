/**
 * The records the simulated CRM and Inventory serve (design §3), and how to make, change and break
 * them. Pure: randomness comes from the caller's {@link Random}, time from the caller's clock.
 */
import type { Random } from './random.ts'

/** Sources may send ids as numbers or strings; the pipeline keys everything by `String(id)`. */
export type EntityId = string | number

/** A CRM customer as `GET /customers` emits it. */
export interface Customer {
  id: EntityId
  name: string
  email: string
  status: string
  productIds: string[]
  updatedAt: string
}

/** An Inventory product as `GET /products` emits it. */
export interface Product {
  id: EntityId
  sku: string
  name: string
  price: number
  stock: number
  updatedAt: string
}

/** The two simulated collections and the record type each holds. */
export interface RecordTypes {
  customers: Customer
  products: Product
}

/** Name of a simulated collection; also its path segment (`/customers`, `/products`). */
export type CollectionName = keyof RecordTypes

/** Both collection names, in a fixed order. */
export const collectionNames: readonly CollectionName[] = ['customers', 'products']

/** Customer statuses the generator draws from. */
export const customerStatuses = ['active', 'inactive', 'prospect', 'churned'] as const

const firstNames =
  'Alice Bob Carla Dmitri Elif Farah Goran Hana Ines Jonas Kofi Lena Mateo Nadia Oskar Priya Quentin Rosa Sven Tariq'.split(
    ' ',
  )
const lastNames =
  'Smith Okafor Novak Garcia Yilmaz Tanaka Müller Rossi Haddad Kowalski Nguyen Silva Andersen Dubois Ivanova Mensah'.split(
    ' ',
  )
const adjectives = 'Compact Deluxe Eco Heavy Mini Pro Smart Ultra Basic Rugged'.split(' ')
const nouns = 'Widget Gadget Sensor Router Lamp Drill Kettle Monitor Cable Valve'.split(' ')

/** A price with two decimals, as money usually arrives. */
function randomPrice(random: Random): number {
  return Math.round((1 + random.next() * 999) * 100) / 100
}

function randomName(random: Random): { first: string; last: string } {
  return { first: random.pick(firstNames), last: random.pick(lastNames) }
}

/** An email unique per id, so a generated data set never has accidental duplicates. */
function emailFor(first: string, last: string, key: string): string {
  return `${first}.${last}.${key}@example.com`.toLowerCase()
}

/** Options of {@link makeCustomer}. */
export interface CustomerDraw {
  /** Keys of the products a customer may reference. */
  readonly productKeys: readonly string[]
  readonly minProducts: number
  readonly maxProducts: number
}

/** Distinct product keys for one customer; empty when there are no products to draw from. */
export function drawProductIds(random: Random, draw: CustomerDraw): string[] {
  const available = draw.productKeys.length
  if (available === 0) return []
  const wanted = Math.min(random.int(draw.minProducts, draw.maxProducts), available)
  if (wanted <= 8) {
    // The common case (a handful out of thousands): rejection sampling beats shuffling an index pool.
    const chosen = new Set<string>()
    while (chosen.size < wanted) chosen.add(random.pick(draw.productKeys))
    return [...chosen]
  }
  return random.sampleIndices(available, wanted).map((i) => draw.productKeys[i] as string)
}

/** A random, valid customer with the given id. */
export function makeCustomer(random: Random, id: EntityId, updatedAt: string, draw: CustomerDraw): Customer {
  const { first, last } = randomName(random)
  return {
    id,
    name: `${first} ${last}`,
    email: emailFor(first, last, String(id)),
    status: random.pick(customerStatuses),
    productIds: drawProductIds(random, draw),
    updatedAt,
  }
}

/** A random, valid product with the given id. */
export function makeProduct(random: Random, id: EntityId, updatedAt: string): Product {
  return {
    id,
    sku: `SKU-${String(id).padStart(7, '0')}`,
    name: `${random.pick(adjectives)} ${random.pick(nouns)}`,
    price: randomPrice(random),
    // A tenth of the products are low on stock, so low-stock summaries have something to count.
    stock: random.next() < 0.1 ? random.int(0, 9) : random.int(10, 500),
    updatedAt,
  }
}

/**
 * The customer with one or more fields changed. Every change alters content (never a no-op), so a
 * test can expect exactly one publish per changed record.
 */
export function changeCustomer(
  random: Random,
  current: Customer,
  updatedAt: string,
  draw: CustomerDraw,
): Customer {
  const next = { ...current, updatedAt }
  switch (random.int(0, 3)) {
    case 0: {
      const others = customerStatuses.filter((s) => s !== current.status)
      next.status = random.pick(others)
      break
    }
    case 1: {
      const { first, last } = randomName(random)
      next.name = `${first} ${last} ${random.int(2, 99)}`
      break
    }
    case 2:
      next.email = `changed.${random.int(0, 1e9)}.${String(current.id)}@example.com`
      break
    default:
      next.productIds = drawProductIds(random, draw)
      // Another draw can give the same set; a changed updatedAt alone is still a change, but a
      // changed status makes the difference visible in the merged view too.
      if (next.productIds.join() === current.productIds.join()) {
        next.status = random.pick(customerStatuses.filter((s) => s !== current.status))
      }
  }
  return next
}

/** The product with its stock, price or name changed (always a real change). */
export function changeProduct(random: Random, current: Product, updatedAt: string): Product {
  const next = { ...current, updatedAt }
  switch (random.int(0, 2)) {
    case 0:
      next.stock = current.stock + random.int(1, 50) * (current.stock > 50 && random.next() < 0.5 ? -1 : 1)
      break
    case 1:
      next.price = Math.round((current.price + random.int(1, 5000) / 100) * 100) / 100
      break
    default:
      next.name = `${current.name} v${random.int(2, 99)}`
  }
  return next
}

/**
 * Records that any sane schema rejects, to mix into a response (fault `invalidRecords`). Their ids,
 * where they have one, never collide with real records, so the expected join is unaffected.
 */
export function makeInvalidRecords(
  collection: CollectionName,
  count: number,
  firstSerial: number,
): unknown[] {
  const out: unknown[] = []
  for (let i = 0; i < count; i++) {
    const serial = firstSerial + i
    const id = `invalid-${serial}`
    const kind = serial % 3
    if (collection === 'customers') {
      const base = { id, name: 'Broken Record', email: `broken.${serial}@example.com`, status: 'active' }
      const at = '2026-01-01T00:00:00.000Z'
      if (kind === 0)
        out.push({ name: base.name, email: base.email, status: base.status, productIds: [], updatedAt: at })
      else if (kind === 1) out.push({ ...base, productIds: 'not-an-array', updatedAt: at })
      else out.push({ ...base, id: null, productIds: [], updatedAt: at })
    } else {
      const base = { id, sku: `SKU-BROKEN-${serial}`, name: 'Broken Product', stock: 1 }
      const at = '2026-01-01T00:00:00.000Z'
      if (kind === 0) out.push({ sku: base.sku, name: base.name, price: 1, stock: 1, updatedAt: at })
      else if (kind === 1) out.push({ ...base, price: '12.50', updatedAt: at })
      else out.push({ ...base, id: null, price: 1, updatedAt: at })
    }
  }
  return out
}

/** The key a record is stored and addressed by. */
export function keyOf(record: { readonly id: EntityId }): string {
  return String(record.id)
}
