/**
 * A test-side reference model of the views Analytics must hold (design §4 must 1, docs/views.md):
 * the source state a sequence of changes leaves, and the join of it. Written from the documentation,
 * on purpose without src/domain/views.ts, so the tests that use it can catch that module's bugs.
 *
 * Assumes prices with at most two decimals (the stock value is summed in whole cents).
 */
import type { Customer, Product } from '../../src/domain/records.ts'
import type { SourceChange } from './sources.ts'

/** The latest record of every entity that exists. */
export interface ModelState {
  readonly customers: Map<string, Customer>
  readonly products: Map<string, Product>
}

/** An empty source state. */
export function emptyState(): ModelState {
  return { customers: new Map(), products: new Map() }
}

/** Applies `changes` in order to `state` (upserts replace, deletions remove) and returns it. */
export function applyChanges(state: ModelState, changes: Iterable<SourceChange>): ModelState {
  for (const change of changes) {
    if ('customer' in change) state.customers.set(change.customer.id, change.customer)
    else if ('product' in change) state.products.set(change.product.id, change.product)
    else if ('deleteCustomer' in change) state.customers.delete(change.deleteCustomer)
    else state.products.delete(change.deleteProduct)
  }
  return state
}

/** The source state `changes` leave, from nothing. */
export function finalState(changes: Iterable<SourceChange>): ModelState {
  return applyChanges(emptyState(), changes)
}

/** The fields of a view that matter, as compared: everything the documentation defines. */
export type ViewFacts = Record<string, unknown>

/** The low-stock threshold and id cap the consumer runs with (defaults of the configuration). */
export interface ModelOptions {
  readonly lowStockThreshold?: number
  readonly customerIdsCap?: number
}

/** UTF-8 byte order, as the documentation specifies for id lists. */
function byteOrder(ids: Iterable<string>): string[] {
  return [...ids].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
}

/**
 * The views the final `state` must produce, by view id (`customer:<id>`, `product:<id>`), each
 * reduced to {@link ViewFacts}. Deleted entities, and products never published, have no view.
 */
export function expectedViews(state: ModelState, options: ModelOptions = {}): Map<string, ViewFacts> {
  const threshold = options.lowStockThreshold ?? 10
  const cap = options.customerIdsCap ?? 100
  const views = new Map<string, ViewFacts>()
  for (const [id, customer] of state.customers) {
    const distinct: string[] = []
    for (const productId of customer.productIds) if (!distinct.includes(productId)) distinct.push(productId)
    const found = distinct.flatMap((productId) => {
      const known = state.products.get(productId)
      return known ? [known] : []
    })
    const cents = found.reduce((sum, p) => sum + Math.round(p.price * 100) * p.stock, 0)
    views.set(`customer:${id}`, {
      type: 'customer',
      id,
      customer,
      products: found,
      missingProductIds: distinct.filter((productId) => !state.products.has(productId)),
      summary: {
        productCount: distinct.length,
        foundCount: found.length,
        totalStockValue: cents / 100,
        lowStockCount: found.filter((p) => p.stock < threshold).length,
      },
    })
  }
  // Who lists each product, built once: chaos runs compare 100k customers against 10k products.
  const listedBy = new Map<string, string[]>()
  for (const customer of state.customers.values()) {
    for (const productId of new Set(customer.productIds)) {
      const ids = listedBy.get(productId)
      if (ids === undefined) listedBy.set(productId, [customer.id])
      else ids.push(customer.id)
    }
  }
  for (const [id, product] of state.products) {
    const referencing = byteOrder(listedBy.get(id) ?? [])
    views.set(`product:${id}`, {
      type: 'product',
      id,
      product,
      customerCount: referencing.length,
      customerIds: referencing.slice(0, cap),
      customerIdsTruncated: referencing.length > cap,
    })
  }
  return views
}

/** The documented fields of a held view (anything else it carries is ignored). */
export function factsOf(view: Record<string, unknown>): ViewFacts {
  const pick = (names: string[]) => Object.fromEntries(names.map((name) => [name, view[name]]))
  return view.type === 'customer'
    ? pick(['type', 'id', 'customer', 'products', 'missingProductIds', 'summary'])
    : pick(['type', 'id', 'product', 'customerCount', 'customerIds', 'customerIdsTruncated'])
}

/** Key-order independent JSON, for comparing records. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}

/**
 * How the views `held` (view id → record, as the mock holds them) differ from `expected`: one line
 * per missing, unexpected or different view; empty when they match exactly. `only` restricts the
 * comparison to the view ids it accepts (tests sharing one mock).
 */
export function viewDifferences(
  held: Record<string, Record<string, unknown>>,
  expected: ReadonlyMap<string, ViewFacts>,
  only: (viewId: string) => boolean = () => true,
): string[] {
  const problems: string[] = []
  for (const [viewId, facts] of expected) {
    if (!only(viewId)) continue
    const view = held[viewId]
    if (view === undefined) problems.push(`${viewId}: missing, expected ${canonical(facts)}`)
    else if (canonical(factsOf(view)) !== canonical(facts))
      problems.push(`${viewId}: held ${canonical(factsOf(view))}, expected ${canonical(facts)}`)
  }
  for (const viewId of Object.keys(held))
    if (only(viewId) && !expected.has(viewId)) problems.push(`${viewId}: held but should not exist`)
  return problems.sort()
}
