/** Customer and product records as the consumer stores them, for tests of views and state. */
import { contentHash } from '../../src/domain/canonical.ts'
import type { Customer, Product } from '../../src/domain/records.ts'
import type { StoredEntity } from '../../src/domain/views.ts'

/** `data` as the consumer keeps it, with its content hash and a fixed poll time. */
export const stored = <T>(data: T, polledAt = '2024-05-01T10:00:00.000Z'): StoredEntity<T> => ({
  data,
  contentHash: contentHash(data),
  polledAt,
})

/** A valid customer listing `productIds`. */
export const customerRecord = (id: string, productIds: string[]): Customer => ({
  id,
  name: `Customer ${id}`,
  email: `c${id}@example.com`,
  status: 'active',
  productIds,
  updatedAt: '2024-05-01T09:00:00Z',
})

/** A valid product. */
export const productRecord = (id: string, price = 10, stock = 5): Product => ({
  id,
  sku: `SKU-${id}`,
  name: `Product ${id}`,
  price,
  stock,
  updatedAt: '2024-05-01T09:00:00Z',
})
