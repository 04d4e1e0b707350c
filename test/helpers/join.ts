/**
 * The views Analytics must hold for a final source state (design §4, must 1): every customer with its
 * products, every product with the customers listing it; deleted entities have no view.
 */
import type { Customer, Product } from '../../src/domain/records.ts'
import { computeView, type StoredEntity, type ViewOptions } from '../../src/domain/views.ts'

/** Payload time and hash do not enter a view; any value does. */
const asStored = <T>(data: T): StoredEntity<T> => ({ data, contentHash: '', polledAt: '' })

/** The expected views by view id (`customer:<id>`, `product:<id>`). */
export function expectedJoin(
  customers: Iterable<Customer>,
  products: Iterable<Product>,
  options: ViewOptions = {},
): Record<string, unknown> {
  const productById = new Map([...products].map((p) => [p.id, asStored(p)]))
  const customerList = [...customers]
  const views: Record<string, unknown> = {}
  for (const customer of customerList) {
    views[`customer:${customer.id}`] = computeView(
      { type: 'customer', id: customer.id, customer: asStored(customer), products: productById },
      options,
    )
  }
  for (const [id, product] of productById) {
    const customerIds = customerList.filter((c) => c.productIds.includes(id)).map((c) => c.id)
    views[`product:${id}`] = computeView(
      { type: 'product', id, product, customerCount: customerIds.length, customerIds },
      options,
    )
  }
  return views
}
