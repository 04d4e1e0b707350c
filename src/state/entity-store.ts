/**
 * The consumer's entity state in Redis, shared by every consumer process: the current customer and
 * product records, and the reverse index product → customers that lists them, plus the bulk reads
 * a view computation needs.
 *
 * Keys (`<p>` is the prefix):
 * - `<p>:consumer:entity:customer`, `<p>:consumer:entity:product`: hashes, id → JSON {@link StoredEntity}
 * - `<p>:consumer:customers-of:<productId>`: sorted set of the ids of customers whose `productIds`
 *   holds the product, all with score 0 so Redis orders them by bytes and hands out the first N
 * - `<p>:consumer:applied-at:<entity>`: hashes, id → the position of the message the state was last
 *   written from (the stale-write guard; for products also the version the product cache checks)
 *
 * Write order (stage 1 must follow it; it is what makes must 1 of design §4 hold without locks):
 * - a **customer** message: {@link EntityStore.writeCustomers} (or `upsertCustomer` / `deleteCustomer`;
 *   state and index entries at once), then publish its refreshes;
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

import { encodePosition, type SourcePosition } from '../domain/fanout.ts'
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
import { appliedAtKey } from './applied-store.ts'
import { chunks, hGetJsonMany, hGetMany } from './bulk.ts'
import type { Redis } from './redis.ts'
import { runScript, type Script, script } from './scripts.ts'
import { VersionedCache } from './versioned-cache.ts'

// True when the message at position ARGV `at` is older than the one the entity's state was last
// written from (positions hash `key`): same topic partition, lower offset, no later timestamp, as
// isSuperseded in domain/fanout.ts. Checked inside the write, so a member still writing a batch after a
// rebalance cannot set back an entity the partition's new owner already moved on.
const STALE = `
local function stale(key, id, at)
  if at == '' then return false end
  local raw = redis.call('HGET', key, id)
  if not raw then return false end
  local old, new = cjson.decode(raw), cjson.decode(at)
  return old.topic == new.topic and old.partition == new.partition
    and tonumber(new.offset) < tonumber(old.offset) and tonumber(new.timestamp) <= tonumber(old.timestamp)
end
local function place(key, id, at)
  if at ~= '' then redis.call('HSET', key, id, at) end
end
`

// Writes or deletes customers, each moving its reverse-index entries and recording its position in
// one atomic step, diffing against the state Redis holds at that moment, so the index stays exactly
// the customers' productIds even if two processes briefly write the same customer (a rebalance).
// Customers are taken in ARGV order, so two versions of one customer in a call end with the later
// one; one older than the stored position is not written, and its id is returned. The index keys
// derive from the stored productIds, so they cannot all be declared in KEYS: fine on one Redis, not
// on a cluster.
// KEYS[1] customer hash, KEYS[2] positions; ARGV[1] index key prefix; then per customer: id, state
// JSON or '' to delete, position or '' (unconditional), the number n of its new distinct productIds,
// and those n ids.
const WRITE_CUSTOMERS = `${STALE}
local skipped = {}
local i = 2
while i <= #ARGV do
  local id, json, at, n = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  if stale(KEYS[2], id, at) then
    skipped[#skipped + 1] = id
  else
    local keep = {}
    for j = i + 4, i + 3 + n do
      keep[ARGV[j]] = true
      redis.call('ZADD', ARGV[1] .. ARGV[j], 0, id)
    end
    local old = redis.call('HGET', KEYS[1], id)
    if old then
      for _, productId in ipairs(cjson.decode(old).data.productIds) do
        if not keep[productId] then redis.call('ZREM', ARGV[1] .. productId, id) end
      end
    end
    if json == '' then redis.call('HDEL', KEYS[1], id) else redis.call('HSET', KEYS[1], id, json) end
    place(KEYS[2], id, at)
  end
  i = i + 4 + n
end
return skipped
`

// Writes or deletes products with their positions, skipping (and returning) those older than the
// stored position. A write without a position (not from a message) removes the stored one: the
// position is also what stage 2's product cache takes as the record's version, so it must change
// with every write, and a record that came from no message has none.
// KEYS[1] product hash, KEYS[2] positions; ARGV: triples of id, JSON or '', position or ''.
const WRITE_PRODUCTS = `${STALE}
local skipped = {}
for i = 1, #ARGV, 3 do
  local id, json, at = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if stale(KEYS[2], id, at) then
    skipped[#skipped + 1] = id
  else
    if json == '' then redis.call('HDEL', KEYS[1], id) else redis.call('HSET', KEYS[1], id, json) end
    if at == '' then redis.call('HDEL', KEYS[2], id) else redis.call('HSET', KEYS[2], id, at) end
  end
end
return skipped
`

// Per index key: its size and its first ARGV[1] members (ARGV[1] > 0), each pair read atomically.
// KEYS: the index keys of the products; returns { count, ids } per key, in order.
const REFERENCES = `
local cap = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local count = redis.call('ZCARD', key)
  local first = {}
  if count > 0 then first = redis.call('ZRANGE', key, 0, cap - 1) end
  out[i] = { count, first }
end
return out
`

/** Product views per script call of the references read: short scripts, as above. */
const REFERENCES_PER_CALL = 250

const SCRIPTS = {
  writeCustomers: script(WRITE_CUSTOMERS),
  writeProducts: script(WRITE_PRODUCTS),
  references: script(REFERENCES),
}

/**
 * Customers per script call of {@link EntityStore.writeCustomers}: one call instead of one per
 * customer saves most of stage 1's Redis work, and a hundred keep each call well under a millisecond
 * of Redis time (a script blocks every other client while it runs).
 */
const CUSTOMERS_PER_CALL = 100

/**
 * An entity to write (its record) or to delete (null), for {@link EntityStore.writeCustomers} and
 * {@link EntityStore.writeProducts}, with the position of the message it comes from: a write older
 * than the stored position is skipped. Without `at` the write is unconditional.
 */
export interface EntityWrite<T> {
  readonly id: string
  readonly stored: StoredEntity<T> | null
  readonly at?: SourcePosition
}

/** A customer to write or delete. */
export type CustomerWrite = EntityWrite<Customer>

/** A product to write or delete. */
export type ProductWrite = EntityWrite<Product>

const positionArg = (at: SourcePosition | undefined): string => (at === undefined ? '' : encodePosition(at))

/** Products per script call of {@link EntityStore.writeProducts}. */
const PRODUCTS_PER_CALL = 200

/** Options of {@link EntityStore.loadViewInputs}. */
export interface LoadViewOptions {
  /** How many referencing customer ids a product view lists; default 100. */
  readonly customerIdsCap?: number
}

/** Products whose parsed records a store keeps for view computations (~5 MB for 10k products). */
export const DEFAULT_PRODUCT_CACHE_ENTRIES = 20_000

/** Redis-backed entity state and reverse index of one deployment (`prefix` separates deployments and tests). */
export class EntityStore {
  readonly #redis: Redis
  readonly #prefix: string
  /**
   * Products by version: view computations read a product's stored position (the message its state
   * was written from, unique per write), not the record, while the record cached under it is current.
   */
  readonly #products: VersionedCache<StoredEntity<Product> | null>

  constructor(redis: Redis, prefix = 'pipeline', options: { readonly productCacheEntries?: number } = {}) {
    this.#redis = redis
    this.#prefix = prefix
    this.#products = new VersionedCache(options.productCacheEntries ?? DEFAULT_PRODUCT_CACHE_ENTRIES)
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

  #run(which: Script, keys: string[], args: string[]): Promise<unknown> {
    return runScript(this.#redis, which, keys, args)
  }

  get #customerKeys(): string[] {
    return [this.#entityKey('customer'), appliedAtKey(this.#prefix, 'customer')]
  }

  /**
   * Stores or deletes `writes`, in order (the later of two writes of one customer wins), each
   * atomically with its reverse-index entries and its position: the customer is added to the index
   * of each of its products and removed from those it no longer lists. A write older than the
   * customer's stored position is skipped. A hundred customers go in one script call; calls issued
   * in order run in order (one connection).
   *
   * @returns the ids whose write was skipped as older than the stored position
   */
  async writeCustomers(writes: readonly CustomerWrite[]): Promise<string[]> {
    const calls: Promise<unknown>[] = []
    for (let i = 0; i < writes.length; i += CUSTOMERS_PER_CALL) {
      const args: string[] = []
      for (const { id, stored, at } of writes.slice(i, i + CUSTOMERS_PER_CALL)) {
        const productIds = stored ? [...new Set(stored.data.productIds)] : []
        args.push(id, stored ? JSON.stringify(stored) : '', positionArg(at), String(productIds.length))
        args.push(...productIds)
      }
      calls.push(this.#run(SCRIPTS.writeCustomers, this.#customerKeys, [this.#indexPrefix, ...args]))
    }
    return ((await Promise.all(calls)) as string[][]).flat()
  }

  /**
   * Stores or deletes products, each with its position, in order; a write older than the product's
   * stored position is skipped. Write them *before* reading {@link customersOf} (see the module comment).
   *
   * @returns the ids whose write was skipped as older than the stored position
   */
  async writeProducts(writes: readonly ProductWrite[]): Promise<string[]> {
    const keys = [this.#entityKey('product'), appliedAtKey(this.#prefix, 'product')]
    const calls = chunks(writes, PRODUCTS_PER_CALL).map((slice) => {
      const args: string[] = []
      for (const { id, stored, at } of slice)
        args.push(id, stored ? JSON.stringify(stored) : '', positionArg(at))
      return this.#run(SCRIPTS.writeProducts, keys, args)
    })
    return ((await Promise.all(calls)) as string[][]).flat()
  }

  /**
   * Stores `customer` and, atomically with it, adds it to the index of each of its products and
   * removes it from those it no longer lists (see {@link writeCustomers} for many at once).
   */
  async upsertCustomer(customer: StoredEntity<Customer>): Promise<void> {
    await this.writeCustomers([{ id: customer.data.id, stored: customer }])
  }

  /** Deletes customer `id` and, atomically with it, its entries in the reverse index. */
  async deleteCustomer(id: string): Promise<void> {
    await this.writeCustomers([{ id, stored: null }])
  }

  /** Stores `product`. Write it *before* reading {@link customersOf} (see the module comment). */
  async upsertProduct(product: StoredEntity<Product>): Promise<void> {
    await this.writeProducts([{ id: product.data.id, stored: product }])
  }

  /**
   * Deletes product `id`. Its index stays: the customers still list it (their views show it missing),
   * and a product that comes back finds them.
   */
  async deleteProduct(id: string): Promise<void> {
    await this.writeProducts([{ id, stored: null }])
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
    const products = await this.#currentProducts([...wanted])

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

  /**
   * The current records of those of `ids` that exist, from the cache where the version read now (the
   * stored position) is the cached one. Misses read version and record in one transaction, so a
   * record is never cached under a version it does not belong to (read apart, a write landing between
   * the two reads would file the newer record under the older version).
   */
  async #currentProducts(ids: readonly string[]): Promise<Map<string, StoredEntity<Product>>> {
    const versionsKey = appliedAtKey(this.#prefix, 'product')
    const versions = await hGetMany(this.#redis, versionsKey, ids)
    const found = new Map<string, StoredEntity<Product>>()
    const misses: string[] = []
    for (const id of ids) {
      const version = versions.get(id)
      const cached = version === undefined ? undefined : this.#products.get(id, version)
      if (cached === undefined) misses.push(id)
      else if (cached !== null) found.set(id, cached)
    }
    const slices = chunks(misses)
    const replies = await Promise.all(
      slices.map((slice) =>
        this.#redis.multi().hmGet(versionsKey, slice).hmGet(this.#entityKey('product'), slice).exec(),
      ),
    )
    slices.forEach((slice, n) => {
      const [slicedVersions, records] = (replies[n] ?? []) as unknown as [
        Array<string | null>,
        Array<string | null>,
      ]
      slice.forEach((id, i) => {
        const raw = records[i]
        const product = raw == null ? null : (JSON.parse(raw) as StoredEntity<Product>)
        if (product !== null) found.set(id, product)
        // No version: written from no message; read each time until its next write.
        const version = slicedVersions[i]
        if (version != null) this.#products.set(id, version, product)
      })
    })
    return found
  }

  /**
   * Per product: the size of its index and its first `cap` members, each pair read atomically; a
   * script call per {@link REFERENCES_PER_CALL} products rather than a transaction per product.
   */
  async #references(
    productIds: readonly string[],
    cap: number,
  ): Promise<Map<string, { count: number; first: string[] }>> {
    const out = new Map<string, { count: number; first: string[] }>()
    const slices = chunks(productIds, REFERENCES_PER_CALL)
    // Issued in one tick, the calls leave as one pipeline.
    const replies = await Promise.all(
      slices.map(async (slice) => {
        const keys = slice.map((productId) => this.#indexKey(productId))
        // ZRANGE 0 -1 would be the whole set: a cap of 0 asks for the counts alone.
        if (cap <= 0) {
          const counts = await Promise.all(keys.map((key) => this.#redis.zCard(key)))
          return counts.map((count): [number, string[]] => [count, []])
        }
        return (await this.#run(SCRIPTS.references, keys, [String(cap)])) as Array<[number, string[]]>
      }),
    )
    slices.forEach((slice, s) => {
      slice.forEach((productId, i) => {
        const [count, first] = replies[s]?.[i] ?? [0, []]
        out.set(productId, { count: Number(count), first })
      })
    })
    return out
  }
}
