/**
 * The consumer's entity state in Redis, shared by every consumer process: the current customer and
 * product records, and the reverse index product → customers that lists them, plus the bulk reads
 * a view computation needs.
 *
 * Keys (`<p>` is the prefix):
 * - `<p>:consumer:entity:customer`, `<p>:consumer:entity:product`: hashes, id → JSON {@link StoredEntity}
 * - `<p>:consumer:customers-of:<productId>`: sorted set of the ids of customers whose `productIds`
 *   holds the product, all with score 0 so Redis orders them by bytes and hands out the first N
 *
 * Write order (stage 1 must follow it; it is what makes must 1 of design §4 hold without locks):
 * - a **customer** message: {@link EntityStore.upsertCustomer} / {@link EntityStore.deleteCustomer}
 *   (state and index entries at once), then publish its refreshes;
 * - a **product** message: {@link EntityStore.upsertProduct} / {@link EntityStore.deleteProduct}
 *   first, then read {@link EntityStore.customersOf}, then publish the refreshes.
 *
 * Why: take customer C adding product P while P changes. If P's index read comes after C's write, it
 * sees C and refreshes C's view, which is computed after both writes. If it comes before, then P's
 * write came before C's write too (each side writes before it reads), so the refresh of C's view that
 * C's message publishes is computed after both. Either way the last refresh of C sees both, and the
 * product view likewise (both sides refresh it, each after its write). Reading the index before
 * writing the product would open a window where neither side sees the other.
 */
import { createHash } from 'node:crypto'
import type { Customer, Product } from '../domain/records.ts'
import {
  type CustomerViewInputs,
  DEFAULT_CUSTOMER_IDS_CAP,
  formatViewId,
  type ProductViewInputs,
  parseViewId,
  type StoredEntity,
  type ViewId,
  type ViewInputs,
} from '../domain/views.ts'
import { chunks, hGetJsonMany } from './bulk.ts'
import type { Redis } from './redis.ts'

// Writes or deletes a customer and moves its reverse-index entries in one atomic step, diffing against
// the state Redis holds at that moment, so the index stays exactly the customers' productIds even if
// two processes briefly write the same customer (a rebalance). The index keys derive from the stored
// productIds, so they cannot all be declared in KEYS: fine on one Redis, not on a cluster.
// KEYS[1] customer hash; ARGV[1] index key prefix, ARGV[2] customer id, ARGV[3] state JSON or '' to
// delete, ARGV[4..] the new distinct productIds.
const WRITE_CUSTOMER = `
local keep = {}
for i = 4, #ARGV do
  keep[ARGV[i]] = true
  redis.call('ZADD', ARGV[1] .. ARGV[i], 0, ARGV[2])
end
local old = redis.call('HGET', KEYS[1], ARGV[2])
if old then
  for _, productId in ipairs(cjson.decode(old).data.productIds) do
    if not keep[productId] then redis.call('ZREM', ARGV[1] .. productId, ARGV[2]) end
  end
end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[2]) else redis.call('HSET', KEYS[1], ARGV[2], ARGV[3]) end
return 1
`
const WRITE_CUSTOMER_SHA = createHash('sha1').update(WRITE_CUSTOMER).digest('hex')

/** Options of {@link EntityStore.loadViewInputs}. */
export interface LoadViewOptions {
  /** How many referencing customer ids a product view lists; default 100. */
  readonly customerIdsCap?: number
}

/** Redis-backed entity state and reverse index of one deployment (`prefix` separates deployments and tests). */
export class EntityStore {
  readonly #redis: Redis
  readonly #prefix: string

  constructor(redis: Redis, prefix = 'pipeline') {
    this.#redis = redis
    this.#prefix = prefix
  }

  #entityKey(entity: 'customer' | 'product'): string {
    return `${this.#prefix}:consumer:entity:${entity}`
  }

  get #indexPrefix(): string {
    return `${this.#prefix}:consumer:customers-of:`
  }

  #indexKey(productId: string): string {
    return `${this.#indexPrefix}${productId}`
  }

  #getMany<T>(entity: 'customer' | 'product', ids: Iterable<string>): Promise<Map<string, StoredEntity<T>>> {
    return hGetJsonMany<string, StoredEntity<T>>(this.#redis, this.#entityKey(entity), ids)
  }

  /** The current records of the customers among `ids` that exist. */
  getCustomers(ids: Iterable<string>): Promise<Map<string, StoredEntity<Customer>>> {
    return this.#getMany('customer', ids)
  }

  /** The current records of the products among `ids` that exist. */
  getProducts(ids: Iterable<string>): Promise<Map<string, StoredEntity<Product>>> {
    return this.#getMany('product', ids)
  }

  async #writeCustomer(id: string, json: string, productIds: readonly string[]): Promise<void> {
    const options = {
      keys: [this.#entityKey('customer')],
      arguments: [this.#indexPrefix, id, json, ...productIds],
    }
    try {
      await this.#redis.evalSha(WRITE_CUSTOMER_SHA, options)
    } catch (error) {
      // First use on this Redis (or after SCRIPT FLUSH / a restart): EVAL also caches the script.
      if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error
      await this.#redis.eval(WRITE_CUSTOMER, options)
    }
  }

  /**
   * Stores `customer` and, atomically with it, adds it to the index of each of its products and
   * removes it from those it no longer lists. Commands for one customer issued in order run in order
   * (one connection), so a batch may call this for many messages at once with `Promise.all`.
   */
  upsertCustomer(customer: StoredEntity<Customer>): Promise<void> {
    const productIds = [...new Set(customer.data.productIds)]
    return this.#writeCustomer(customer.data.id, JSON.stringify(customer), productIds)
  }

  /** Deletes customer `id` and, atomically with it, its entries in the reverse index. */
  deleteCustomer(id: string): Promise<void> {
    return this.#writeCustomer(id, '', [])
  }

  /** Stores `product`. Write it *before* reading {@link customersOf} (see the module comment). */
  async upsertProduct(product: StoredEntity<Product>): Promise<void> {
    await this.#redis.hSet(this.#entityKey('product'), product.data.id, JSON.stringify(product))
  }

  /**
   * Deletes product `id`. Its index stays: the customers still list it (their views show it missing),
   * and a product that comes back finds them.
   */
  async deleteProduct(id: string): Promise<void> {
    await this.#redis.hDel(this.#entityKey('product'), id)
  }

  /** How many customers list product `productId`. */
  countCustomersOf(productId: string): Promise<number> {
    return this.#redis.zCard(this.#indexKey(productId))
  }

  /**
   * The ids of every customer listing `productId`, in byte order, `pageSize` at a time. Pages follow
   * the last id seen rather than a position, so a customer that stays in the index while others join
   * or leave it during the walk is never skipped.
   */
  async *customersOf(productId: string, pageSize = 10_000): AsyncGenerator<string[]> {
    const key = this.#indexKey(productId)
    let from = '-'
    for (;;) {
      const page = await this.#redis.zRange(key, from, '+', {
        BY: 'LEX',
        LIMIT: { offset: 0, count: pageSize },
      })
      if (page.length > 0) yield page
      const last = page.at(-1)
      if (page.length < pageSize || last === undefined) return
      from = `(${last}`
    }
  }

  /**
   * Loads, in bulk, what computing each of `viewIds` needs: a customer view gets the customer and
   * those of its products that exist; a product view gets the product, its number of referencing
   * customers and the first `customerIdsCap` of their ids (byte order, as the payload wants).
   * Ids that are not view ids are left out.
   */
  async loadViewInputs(
    viewIds: Iterable<ViewId>,
    options: LoadViewOptions = {},
  ): Promise<Map<ViewId, ViewInputs>> {
    const cap = options.customerIdsCap ?? DEFAULT_CUSTOMER_IDS_CAP
    const customerIds: string[] = []
    const productViewIds: string[] = []
    for (const viewId of new Set(viewIds)) {
      const ref = parseViewId(viewId)
      if (ref?.type === 'customer') customerIds.push(ref.id)
      else if (ref?.type === 'product') productViewIds.push(ref.id)
    }
    const [customers, references] = await Promise.all([
      this.getCustomers(customerIds),
      this.#references(productViewIds, cap),
    ])
    const wanted = new Set(productViewIds)
    for (const customer of customers.values()) for (const id of customer.data.productIds) wanted.add(id)
    const products = await this.getProducts(wanted)

    const inputs = new Map<ViewId, ViewInputs>()
    for (const id of customerIds) {
      const customer = customers.get(id)
      const own = new Map<string, StoredEntity<Product>>()
      for (const productId of customer?.data.productIds ?? []) {
        const product = products.get(productId)
        if (product !== undefined) own.set(productId, product)
      }
      const view: CustomerViewInputs = { type: 'customer', id, customer, products: own }
      inputs.set(formatViewId('customer', id), view)
    }
    for (const id of productViewIds) {
      const reference = references.get(id)
      const view: ProductViewInputs = {
        type: 'product',
        id,
        product: products.get(id),
        customerCount: reference?.count ?? 0,
        customerIds: reference?.first ?? [],
      }
      inputs.set(formatViewId('product', id), view)
    }
    return inputs
  }

  /** Per product: the size of its index and its first `cap` members, each pair read atomically. */
  async #references(
    productIds: readonly string[],
    cap: number,
  ): Promise<Map<string, { count: number; first: string[] }>> {
    const out = new Map<string, { count: number; first: string[] }>()
    for (const slice of chunks(productIds)) {
      const replies = await Promise.all(
        slice.map(async (productId) => {
          const key = this.#indexKey(productId)
          // ZRANGE 0 -1 would be the whole set: a cap of 0 asks for the count alone.
          if (cap <= 0) return { count: await this.#redis.zCard(key), first: [] }
          const [count, first] = await this.#redis
            .multi()
            .zCard(key)
            .zRange(key, 0, cap - 1)
            .exec()
          return { count: Number(count), first: (first ?? []) as string[] }
        }),
      )
      replies.forEach((reply, i) => {
        const productId = slice[i]
        if (productId !== undefined) out.set(productId, reply)
      })
    }
    return out
  }
}
