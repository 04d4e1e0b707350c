/**
 * The simulated CRM + Inventory data: deterministic generation from a seed, direct edits, and bulk
 * random mutations that report exactly what they changed (so a test knows what the pipeline must
 * publish). No I/O; time comes from an injected clock.
 */
import { Random } from './random.ts'
import {
  type CollectionName,
  type Customer,
  type CustomerDraw,
  changeCustomer,
  changeProduct,
  type EntityId,
  makeCustomer,
  makeProduct,
  type Product,
  type RecordTypes,
} from './records.ts'
import { Collection } from './store.ts'

/** How to generate a data set. */
export interface DatasetOptions {
  readonly customers: number
  readonly products: number
  readonly seed: number
  /** How many distinct products each customer references, drawn uniformly; default 1–5. */
  readonly productsPerCustomer?: { readonly min: number; readonly max: number }
  /** Share (0–1) of records whose `id` is emitted as a JSON number instead of a string; default 0. */
  readonly numericIdShare?: number
}

/** What {@link Dataset.mutate} should do, per collection it touches. */
export interface MutationRequest {
  readonly changes?: number
  readonly deletions?: number
  readonly creations?: number
  /** Seed of this batch alone; without one the data set's own random stream continues. */
  readonly seed?: number
  /** Which collection to mutate; `both` (the default) applies the counts to each. */
  readonly collection?: CollectionName | 'both'
}

/** The keys a mutation touched in one collection. */
export interface CollectionChanges {
  created: string[]
  changed: string[]
  deleted: string[]
}

/** What {@link Dataset.mutate} did. */
export interface MutationResult {
  readonly customers: CollectionChanges
  readonly products: CollectionChanges
  readonly versions: { readonly customers: number; readonly products: number }
}

/** Counts and versions, for `GET /control/state`. */
export interface DatasetState {
  readonly seed: number
  readonly customers: { readonly count: number; readonly version: number }
  readonly products: { readonly count: number; readonly version: number }
}

/** The current records, as the source emits them (ids may be numbers). Do not mutate. */
export interface DatasetSnapshot {
  readonly customers: readonly Readonly<Customer>[]
  readonly products: readonly Readonly<Product>[]
}

/** A record without its id, every field optional: the body of a partial update. */
export type RecordPatch<K extends CollectionName> = Partial<Omit<RecordTypes[K], 'id'>>

/** Generated records start within this window, so re-generation with a seed gives the same timestamps. */
const generationEpoch = Date.UTC(2026, 0, 1)
const generationWindowMs = 30 * 24 * 3600 * 1000
const productIdStep = 100

/** Ids are numeric strings (customers 1, 2, …; products 100, 200, … as in the brief's sample). */
function emittedId(random: Random, numeric: number, numericShare: number): EntityId {
  return numericShare > 0 && random.next() < numericShare ? numeric : String(numeric)
}

function validate(options: DatasetOptions): Required<DatasetOptions> {
  const range = options.productsPerCustomer ?? { min: 1, max: 5 }
  const share = options.numericIdShare ?? 0
  for (const [name, value] of [
    ['customers', options.customers],
    ['products', options.products],
  ] as const) {
    if (!Number.isInteger(value) || value < 0) throw new RangeError(`${name} must be a whole number ≥ 0`)
  }
  if (!Number.isInteger(options.seed)) throw new RangeError('seed must be an integer')
  if (
    !Number.isInteger(range.min) ||
    range.min < 0 ||
    !Number.isInteger(range.max) ||
    range.max < range.min
  ) {
    throw new RangeError('productsPerCustomer must be whole numbers with 0 ≤ min ≤ max')
  }
  if (!(share >= 0 && share <= 1)) throw new RangeError('numericIdShare must be between 0 and 1')
  return { ...options, productsPerCustomer: range, numericIdShare: share }
}

/** Both collections, their random stream and id counters. */
export class Dataset {
  readonly #now: () => number
  #options: Required<DatasetOptions>
  #random: Random
  #customers: Collection<Customer>
  #products: Collection<Product>
  #nextCustomerId = 1
  #nextProductId = productIdStep
  #keys: { version: number; keys: string[] } | undefined

  /** @param now the clock stamping `updatedAt` on changes (generation itself does not read it). */
  constructor(options: DatasetOptions, now: () => number = Date.now) {
    this.#now = now
    this.#options = validate(options)
    this.#random = new Random(options.seed)
    this.#customers = new Collection<Customer>([])
    this.#products = new Collection<Product>([])
    this.#generate(1)
  }

  /** Throws away every record and generates a new data set; versions keep increasing. */
  replace(options: DatasetOptions): void {
    this.#options = validate(options)
    this.#random = new Random(options.seed)
    this.#generate(Math.max(this.#customers.version, this.#products.version) + 1)
  }

  /** The collection by name, typed by what it holds. */
  collection<K extends CollectionName>(name: K): Collection<RecordTypes[K]> {
    const collections: { [C in CollectionName]: Collection<RecordTypes[C]> } = {
      customers: this.#customers,
      products: this.#products,
    }
    return collections[name]
  }

  state(): DatasetState {
    return {
      seed: this.#options.seed,
      customers: { count: this.#customers.size, version: this.#customers.version },
      products: { count: this.#products.size, version: this.#products.version },
    }
  }

  snapshot(): DatasetSnapshot {
    return { customers: this.#customers.view().records, products: this.#products.view().records }
  }

  /**
   * Changes some fields of a record and stamps `updatedAt` (unless the patch sets it).
   * @returns the new record, or undefined when there is no record with that key.
   */
  patch<K extends CollectionName>(name: K, key: string, fields: RecordPatch<K>): RecordTypes[K] | undefined {
    const collection = this.collection(name)
    const current = collection.get(key)
    if (current === undefined) return undefined
    const next = { ...current, ...fields, id: current.id, updatedAt: fields.updatedAt ?? this.#stamp() }
    collection.upsert(next)
    return next
  }

  /** Creates or replaces a whole record (keyed by `String(record.id)`). */
  put<K extends CollectionName>(name: K, record: RecordTypes[K]): 'created' | 'replaced' {
    return this.collection(name).upsert(record)
  }

  /** Deletes a record; false when there was none. */
  remove(name: CollectionName, key: string): boolean {
    return this.collection(name).delete(key)
  }

  /**
   * Random changes, deletions and creations. Changed and deleted records are distinct; products are
   * mutated first, so customers created or changed in the same batch reference current products.
   */
  mutate(request: MutationRequest): MutationResult {
    const random = request.seed === undefined ? this.#random : new Random(request.seed)
    const target = request.collection ?? 'both'
    const empty = (): CollectionChanges => ({ created: [], changed: [], deleted: [] })
    const result = { products: empty(), customers: empty() }
    const updatedAt = this.#stamp()
    for (const name of ['products', 'customers'] as const) {
      if (target !== 'both' && target !== name) continue
      const changes = result[name]
      const view = this.collection(name).view()
      const picks = random.sampleIndices(
        view.records.length,
        (request.deletions ?? 0) + (request.changes ?? 0),
      )
      const deletions = Math.min(request.deletions ?? 0, picks.length)
      for (let i = 0; i < picks.length; i++) {
        const record = view.records[picks[i] as number]
        if (record === undefined) continue
        const key = String(record.id)
        if (i < deletions) {
          this.remove(name, key)
          changes.deleted.push(key)
        } else {
          this.#change(name, random, record, updatedAt)
          changes.changed.push(key)
        }
      }
      for (let i = 0; i < (request.creations ?? 0); i++)
        changes.created.push(this.#create(name, random, updatedAt))
    }
    return {
      ...result,
      versions: { customers: this.#customers.version, products: this.#products.version },
    }
  }

  #stamp(): string {
    return new Date(this.#now()).toISOString()
  }

  #draw(): CustomerDraw {
    const range = this.#options.productsPerCustomer
    return { productKeys: this.#productKeys(), minProducts: range.min, maxProducts: range.max }
  }

  /** Cached per products version: a batch of customer changes would otherwise rebuild it per record. */
  #productKeys(): string[] {
    const view = this.#products.view()
    if (this.#keys?.version !== view.version) {
      this.#keys = { version: view.version, keys: view.records.map((p) => String(p.id)) }
    }
    return this.#keys.keys
  }

  #change<K extends CollectionName>(
    name: K,
    random: Random,
    record: RecordTypes[K],
    updatedAt: string,
  ): void {
    if (name === 'customers') {
      this.#customers.upsert(changeCustomer(random, record as Customer, updatedAt, this.#draw()))
    } else {
      this.#products.upsert(changeProduct(random, record as Product, updatedAt))
    }
  }

  #create(name: CollectionName, random: Random, updatedAt: string): string {
    const share = this.#options.numericIdShare
    if (name === 'customers') {
      while (this.#customers.get(String(this.#nextCustomerId)) !== undefined) this.#nextCustomerId++
      const id = emittedId(random, this.#nextCustomerId++, share)
      this.#customers.upsert(makeCustomer(random, id, updatedAt, this.#draw()))
      return String(id)
    }
    while (this.#products.get(String(this.#nextProductId)) !== undefined) this.#nextProductId += productIdStep
    const id = emittedId(random, this.#nextProductId, share)
    this.#nextProductId += productIdStep
    this.#products.upsert(makeProduct(random, id, updatedAt))
    return String(id)
  }

  #generate(version: number): void {
    const { customers, products, numericIdShare: share, productsPerCustomer: range } = this.#options
    const random = this.#random
    const stamp = () =>
      new Date(generationEpoch + Math.floor(random.next() * generationWindowMs)).toISOString()
    const productRecords: Product[] = new Array(products)
    const productKeys: string[] = new Array(products)
    for (let i = 0; i < products; i++) {
      const numeric = (i + 1) * productIdStep
      productRecords[i] = makeProduct(random, emittedId(random, numeric, share), stamp())
      productKeys[i] = String(numeric)
    }
    const draw: CustomerDraw = { productKeys, minProducts: range.min, maxProducts: range.max }
    const customerRecords: Customer[] = new Array(customers)
    for (let i = 0; i < customers; i++) {
      customerRecords[i] = makeCustomer(random, emittedId(random, i + 1, share), stamp(), draw)
    }
    this.#products = new Collection(productRecords, version)
    this.#customers = new Collection(customerRecords, version)
    this.#nextCustomerId = customers + 1
    this.#nextProductId = (products + 1) * productIdStep
  }
}
