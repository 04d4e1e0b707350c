/**
 * The merged views delivered to Analytics (design §4) and the delivery decision of design §5, without
 * I/O: the consumer loads {@link ViewInputs} from Redis, computes the payload here, and asks
 * {@link decideDelivery} whether and under which idempotency key to POST it. Payload shapes are
 * documented for Analytics in `docs/views.md`; keep the two in step.
 */
import { createHash, hash as digest } from 'node:crypto'
import { canonicalJson } from './canonical.ts'
import type { Customer, Product } from './records.ts'

/** The kinds of view; each is keyed by the id of the entity it is about. */
export type ViewType = 'customer' | 'product'

/** A view id, `customer:<id>` or `product:<id>`: the key of refresh requests and of delivery records. */
export type ViewId = `${ViewType}:${string}`

/** A view id taken apart. */
export interface ViewRef {
  readonly type: ViewType
  readonly id: string
}

/** The view id of entity `id` of type `type`. */
export function formatViewId(type: ViewType, id: string): ViewId {
  return `${type}:${id}`
}

/**
 * Takes a view id apart at its first `:` (entity ids may themselves contain `:`, types never do).
 *
 * @returns undefined when `value` is not a view id (unknown type or empty id)
 */
export function parseViewId(value: string): ViewRef | undefined {
  const colon = value.indexOf(':')
  if (colon < 0 || colon === value.length - 1) return undefined
  const type = value.slice(0, colon)
  if (type !== 'customer' && type !== 'product') return undefined
  return { type, id: value.slice(colon + 1) }
}

/** True when `value` is a well-formed view id. */
export function isViewId(value: string): value is ViewId {
  return parseViewId(value) !== undefined
}

/** An entity as the consumer keeps it: the envelope's `data`, with its content hash and poll time. */
export interface StoredEntity<T> {
  readonly data: T
  readonly contentHash: string
  /** When the poll that saw this version started (ISO 8601), for end-to-end latency. */
  readonly polledAt: string
}

/** Everything a customer view is computed from. */
export interface CustomerViewInputs {
  readonly type: 'customer'
  readonly id: string
  /** Undefined when the customer does not exist (deleted or never seen). */
  readonly customer: StoredEntity<Customer> | undefined
  /** The known products among the customer's `productIds`; ids not in the map are missing. */
  readonly products: ReadonlyMap<string, StoredEntity<Product>>
}

/** Everything a product view is computed from. */
export interface ProductViewInputs {
  readonly type: 'product'
  readonly id: string
  /** Undefined when the product does not exist (deleted or never seen). */
  readonly product: StoredEntity<Product> | undefined
  /** How many customers list this product in their `productIds`. */
  readonly customerCount: number
  /** Ids of referencing customers: at least the first `customerIdsCap` in {@link compareIds} order. */
  readonly customerIds: readonly string[]
}

/** The inputs of one view. */
export type ViewInputs = CustomerViewInputs | ProductViewInputs

/** Tunables of the payloads. Every consumer must use the same values: they change view hashes. */
export interface ViewOptions {
  /** A found product with `stock` below this counts as low stock. Default 10. */
  readonly lowStockThreshold?: number
  /** At most this many `customerIds` in a product view. Default 100. */
  readonly customerIdsCap?: number
}

/** Default {@link ViewOptions.lowStockThreshold}. */
export const DEFAULT_LOW_STOCK_THRESHOLD = 10
/** Default {@link ViewOptions.customerIdsCap}. */
export const DEFAULT_CUSTOMER_IDS_CAP = 100

/** Summary figures of a customer view. */
export interface CustomerSummary {
  /** Distinct ids in the customer's `productIds`, found or not. */
  readonly productCount: number
  /** Distinct ids whose product is known. */
  readonly foundCount: number
  /** Sum of `price * stock` over found products, rounded to 2 decimals. */
  readonly totalStockValue: number
  /** Found products with `stock` below the low-stock threshold. */
  readonly lowStockCount: number
}

/** The customer view payload POSTed to Analytics. */
export interface CustomerView {
  readonly type: 'customer'
  readonly id: string
  readonly customer: Customer
  /** Found products in `productIds` order, each once. */
  readonly products: Product[]
  /** `productIds` not known (yet), in `productIds` order, each once. */
  readonly missingProductIds: string[]
  readonly summary: CustomerSummary
}

/** The product view payload POSTed to Analytics. */
export interface ProductView {
  readonly type: 'product'
  readonly id: string
  readonly product: Product
  readonly customerCount: number
  /** The first `customerIdsCap` referencing customer ids in {@link compareIds} order. */
  readonly customerIds: string[]
  /** True when `customerCount` exceeds the ids listed. */
  readonly customerIdsTruncated: boolean
}

/** What Analytics receives when a view it holds no longer exists. */
export interface DeletedView {
  readonly type: ViewType
  readonly id: string
  readonly deleted: true
}

/** A view that exists. */
export type ViewPayload = CustomerView | ProductView

/** Anything POSTed to Analytics. */
export type DeliveryPayload = ViewPayload | DeletedView

/**
 * Orders ids by their UTF-8 bytes, which is how Redis orders the members of a sorted set with equal
 * scores: the store can then fetch exactly the first N ids instead of the whole index. (JavaScript's
 * default sort compares UTF-16 code units, which disagrees for characters beyond U+FFFF.)
 */
export function compareIds(a: string, b: string): number {
  if (!SURROGATE.test(a) && !SURROGATE.test(b)) return a < b ? -1 : a > b ? 1 : 0
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

/**
 * A UTF-16 surrogate. Without any, UTF-16 unit order is code point order, which is UTF-8 byte order:
 * the plain string comparison agrees with the bytes, without encoding every id (a product view sorts
 * up to a hundred ids per delivery).
 */
const SURROGATE = /[\uD800-\uDFFF]/

/** `ids` without duplicates, sorted by {@link compareIds}. */
export function sortIds(ids: Iterable<string>): string[] {
  const distinct = [...new Set(ids)]
  if (!distinct.some((id) => SURROGATE.test(id))) return distinct.sort()
  return distinct
    .map((id) => ({ id, bytes: Buffer.from(id, 'utf8') }))
    .sort((a, b) => Buffer.compare(a.bytes, b.bytes))
    .map(({ id }) => id)
}

/**
 * Rounds to cents the decimal a person reads, not its binary approximation: 1.005 is stored as
 * 1.00499…, and a sum of products drifts in its last digits, so a plain `Math.round(x * 100)` can
 * round half a cent down. Twelve significant digits drop that noise and keep any real amount.
 */
function roundCents(value: number): number {
  const rounded = Number(`${Math.round(Number(`${Number(value.toPrecision(12))}e2`))}e-2`)
  // Exponent notation (tiny or huge values) defeats the string shift; cents are moot there anyway.
  return Number.isFinite(rounded) ? rounded : Math.round(value * 100) / 100
}

/** The customer view of `inputs`, or undefined when the customer does not exist. */
export function customerView(
  inputs: CustomerViewInputs,
  options: ViewOptions = {},
): CustomerView | undefined {
  if (inputs.customer === undefined) return undefined
  const threshold = options.lowStockThreshold ?? DEFAULT_LOW_STOCK_THRESHOLD
  const customer = inputs.customer.data
  const productIds = [...new Set(customer.productIds)]
  const products: Product[] = []
  const missingProductIds: string[] = []
  let stockValue = 0
  let lowStockCount = 0
  for (const productId of productIds) {
    const product = inputs.products.get(productId)?.data
    if (product === undefined) {
      missingProductIds.push(productId)
      continue
    }
    products.push(product)
    stockValue += product.price * product.stock
    if (product.stock < threshold) lowStockCount += 1
  }
  return {
    type: 'customer',
    id: inputs.id,
    customer,
    products,
    missingProductIds,
    summary: {
      productCount: productIds.length,
      foundCount: products.length,
      totalStockValue: roundCents(stockValue),
      lowStockCount,
    },
  }
}

/** The product view of `inputs`, or undefined when the product does not exist. */
export function productView(inputs: ProductViewInputs, options: ViewOptions = {}): ProductView | undefined {
  if (inputs.product === undefined) return undefined
  const cap = options.customerIdsCap ?? DEFAULT_CUSTOMER_IDS_CAP
  // Sorting here too makes the payload independent of how many ids, in what order, the store passed.
  const customerIds = sortIds(inputs.customerIds).slice(0, cap)
  return {
    type: 'product',
    id: inputs.id,
    product: inputs.product.data,
    customerCount: inputs.customerCount,
    customerIds,
    customerIdsTruncated: inputs.customerCount > customerIds.length,
  }
}

/** The payload of the view described by `inputs`, or undefined when the view is absent. */
export function computeView(inputs: ViewInputs, options: ViewOptions = {}): ViewPayload | undefined {
  return inputs.type === 'customer' ? customerView(inputs, options) : productView(inputs, options)
}

/**
 * The most recent `polledAt` among the records a view was computed from (ISO strings of one clock
 * compare as text), for the poll-to-sink latency; undefined when none exists.
 */
export function viewPolledAt(inputs: ViewInputs): string | undefined {
  const times =
    inputs.type === 'customer'
      ? [inputs.customer?.polledAt, ...[...inputs.products.values()].map((product) => product.polledAt)]
      : [inputs.product?.polledAt]
  let latest: string | undefined
  for (const time of times) if (time !== undefined && (latest === undefined || time > latest)) latest = time
  return latest
}

/** The payload telling Analytics that view `type:id` no longer exists. */
export function deletedView(type: ViewType, id: string): DeletedView {
  return { type, id, deleted: true }
}

/** SHA-256 (hex) of the canonical JSON of a payload: equal for equal content, whatever the key order. */
export function viewHash(payload: DeliveryPayload): string {
  return digest('sha256', viewJson(payload), 'hex')
}

/**
 * `canonicalJson(payload)`, without copying and sorting the view's own object: its keys are listed
 * in sorted order below (none looks like an array index, which JavaScript would order first); only
 * the records it carries go through `canonicalJson`. A unit test holds it equal to `canonicalJson`
 * for any payload. Being JSON of the payload, it is also the body POSTed, serialized once.
 */
export function viewJson(payload: DeliveryPayload): string {
  if ('deleted' in payload) return canonicalJson(payload)
  const id = JSON.stringify(payload.id)
  if (payload.type === 'product') {
    return (
      `{"customerCount":${JSON.stringify(payload.customerCount)},` +
      `"customerIds":${JSON.stringify(payload.customerIds)},` +
      `"customerIdsTruncated":${JSON.stringify(payload.customerIdsTruncated)},` +
      `"id":${id},"product":${canonicalJson(payload.product)},"type":"product"}`
    )
  }
  return (
    `{"customer":${canonicalJson(payload.customer)},"id":${id},` +
    `"missingProductIds":${JSON.stringify(payload.missingProductIds)},` +
    `"products":[${payload.products.map(canonicalJson).join(',')}],` +
    `"summary":${canonicalJson(payload.summary)},"type":"customer"}`
  )
}

/**
 * The idempotency key of delivering content `hash` of view `viewId`, given the key of the view's
 * previous delivery attempt: `<type>:<id>:<h>` with `h = sha256hex((previousKey ?? '') + '\n' + hash)`.
 *
 * Design §5's form is kept (the sink reads the view from everything before the last `:`), but `h`
 * chains on the previous key instead of being the bare content hash. With a bare hash, a view going
 * A → B → A would send A's key again: the sink dedupes it as a replay and keeps B (ABA). Chained, the
 * three deliveries have three distinct keys, while a retry of one delivery, which has the same
 * previous key and content, re-sends the same key and the sink dedupes it.
 */
export function idempotencyKey(viewId: ViewId, previousKey: string | undefined, hash: string): string {
  const chained = createHash('sha256')
    .update(`${previousKey ?? ''}\n${hash}`)
    .digest('hex')
  return `${viewId}:${chained}`
}

/**
 * What the delivery store remembers per view: the last attempted delivery, and whether the sink
 * acknowledged it (2xx). Claimed unconfirmed before the POST, settled after it (see `DeliveryStore`).
 */
export interface DeliveryRecord {
  readonly key: string
  readonly hash: string
  readonly confirmed: boolean
  /**
   * Confirmed records only, when known: the view-clock value read before the state this content was
   * computed from. Refresh requests stamped with it or lower are covered (see {@link isCovered}).
   */
  readonly seq?: number
  /**
   * Until when (epoch ms) a request of this view may still land at Analytics: set while a POST is
   * claimed and after one was given up on (timeout, cut connection, circuit opened, dead-lettered);
   * absent once the sink answered 2xx (a late copy of a stored key is a replay), unless another
   * member's request given up on may still land (see `doubt`). Until then no *other* content of the
   * view is sent: it could land first and be overwritten by the late one.
   */
  readonly mayLandUntil?: number
  /**
   * Set when a delivery of another key may have landed after this one (a deliverer that found the
   * record moved on when it settled): the sink may hold older content than the record says, so the
   * next evaluation delivers the current content under a fresh key even when it did not change.
   */
  readonly doubt?: true
}

/**
 * True when a refresh request stamped `requested` (the view clock after the writes that caused it)
 * needs no evaluation because an evaluation that read the clock at `evaluated` is settled: that
 * evaluation read state after every write stamped `evaluated` or lower, and what it computed is
 * what Analytics holds (delivered, or found unchanged) or was settled otherwise (dead-lettered). A
 * request without a stamp (a retry round, a DLQ replay, an older consumer) is never covered.
 *
 * Why it is sound: evaluations of one view run one after another (one partition), each reading the
 * clock later, so the last settled one read the highest value. The last write that touches a view is
 * followed by a refresh stamped at least with its value; either that refresh is evaluated, or an
 * evaluation that already saw the write is settled. Either way the last delivery is the latest state.
 */
export function isCovered(requested: number | undefined, evaluated: number | undefined): boolean {
  return requested !== undefined && evaluated !== undefined && requested <= evaluated
}

/** Whether to POST a view, and what. */
export type DeliveryDecision =
  | { readonly action: 'skip' }
  | {
      /** Another delivery of the view may still land (see {@link DeliveryRecord.mayLandUntil}): ask again later. */
      readonly action: 'wait'
      readonly until: number
    }
  | {
      readonly action: 'deliver'
      readonly payload: DeliveryPayload
      /** The payload's canonical JSON ({@link viewJson}): what `hash` digests, and the body to send. */
      readonly json: string
      readonly hash: string
      readonly key: string
      /** True when this re-sends an attempt whose outcome is unknown (same key, same content). */
      readonly resend: boolean
    }

/**
 * Decides the delivery of view `viewId` whose current payload is `payload` (undefined: the view is
 * absent), given its {@link DeliveryRecord} `last`, at time `now` (epoch ms).
 *
 * - Same content as the last attempt: skip if the sink confirmed it, else re-send it under the same
 *   key (a crash between POST and confirmation; the sink dedupes). In doubt, deliver it again under
 *   a fresh key (see {@link DeliveryRecord.doubt}).
 * - Absent and never delivered: skip; there is nothing to delete.
 * - Other content while a request of the last attempt may still land: wait (see
 *   {@link DeliveryRecord.mayLandUntil}).
 * - Otherwise deliver the payload (a {@link DeletedView} when absent) under a key chained on the last
 *   attempt's key.
 *
 * Why an unconfirmed attempt is recorded before the POST (design §5 writes only after the 2xx): if
 * only confirmed deliveries were remembered, a view delivered as A, then POSTed as B with a crash
 * before the 2xx was recorded, then changed back to A, would be skipped as "A already delivered",
 * while the sink holds B. Knowing that B may have landed, we deliver A again, under a new key.
 */
export function decideDelivery(
  viewId: ViewId,
  payload: ViewPayload | undefined,
  last: DeliveryRecord | undefined,
  now: number = Date.now(),
): DeliveryDecision {
  let body: DeliveryPayload
  if (payload !== undefined) body = payload
  else if (last === undefined) return { action: 'skip' }
  else {
    const ref = parseViewId(viewId)
    if (ref === undefined) throw new RangeError(`not a view id: ${viewId}`)
    body = deletedView(ref.type, ref.id)
  }
  const json = viewJson(body)
  const hash = digest('sha256', json, 'hex')
  if (last !== undefined && last.hash === hash && last.doubt !== true) {
    if (last.confirmed) return { action: 'skip' }
    return { action: 'deliver', payload: body, json, hash, key: last.key, resend: true }
  }
  if (last?.mayLandUntil !== undefined && now < last.mayLandUntil)
    return { action: 'wait', until: last.mayLandUntil }
  return {
    action: 'deliver',
    payload: body,
    json,
    hash,
    key: idempotencyKey(viewId, last?.key, hash),
    resend: false,
  }
}
