/** Producing source-topic messages directly, as the producer would, for consumer tests. */
import type { Config } from '../../src/config/env.ts'
import { tombstoneMessage, upsertMessage } from '../../src/domain/envelope.ts'
import type { Customer, Product } from '../../src/domain/records.ts'
import type { OutgoingMessage } from '../../src/kafka/ports.ts'
import { createProducer, publish } from '../../src/kafka/producer.ts'

/** A customer record with defaults for what a test does not care about. */
export function customer(id: string, productIds: string[], extra: Partial<Customer> = {}): Customer {
  return {
    id,
    name: `Customer ${id}`,
    email: `c${id}@example.com`,
    status: 'active',
    productIds,
    updatedAt: '2026-02-04T18:30:00Z',
    ...extra,
  }
}

/** A product record with defaults. */
export function product(id: string, extra: Partial<Product> = {}): Product {
  return {
    id,
    sku: `SKU-${id}`,
    name: `Product ${id}`,
    price: 10,
    stock: 5,
    updatedAt: '2026-02-04T18:30:00Z',
    ...extra,
  }
}

/** A change to produce: an upsert, or a deletion (tombstone). */
export type SourceChange =
  | { readonly customer: Customer }
  | { readonly product: Product }
  | { readonly deleteCustomer: string }
  | { readonly deleteProduct: string }

/** Produces changes to the config's source topics, in order, acknowledged. */
export function sourceWriter(config: Config) {
  const producer = createProducer(config, 'test-sources')
  const customers = { name: 'crm', entity: 'customer' as const, topic: config.TOPIC_CUSTOMERS }
  const products = { name: 'inventory', entity: 'product' as const, topic: config.TOPIC_PRODUCTS }
  const toMessage = (change: SourceChange): OutgoingMessage => {
    const polledAt = new Date().toISOString()
    if ('customer' in change) return upsertMessage(customers, change.customer, polledAt)
    if ('product' in change) return upsertMessage(products, change.product, polledAt)
    if ('deleteCustomer' in change) return tombstoneMessage(customers, change.deleteCustomer, polledAt)
    return tombstoneMessage(products, change.deleteProduct, polledAt)
  }
  return {
    async write(...changes: SourceChange[]): Promise<void> {
      await publish(producer, changes.map(toMessage))
    },
    /** Produces raw values (poison) to the customer topic. */
    async writeRaw(topic: string, key: string | undefined, value: string): Promise<void> {
      await publish(producer, [{ topic, key, value }])
    },
    close: () => producer.close(),
  }
}
