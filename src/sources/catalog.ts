/**
 * The sources the producer polls, from configuration. A further source is one more entry here plus
 * its schema in src/domain/records.ts, not a new poller.
 */
import type { Config } from '../config/env.ts'
import type { EntityName } from '../domain/records.ts'

/** One polled source. */
export interface SourceSpec {
  /** Short name used in metrics, logs, Redis keys and the envelope, e.g. `crm`. */
  readonly name: string
  readonly entity: EntityName
  /** How a record is named in the delivery report: "Customer 1 delivered successfully…". */
  readonly label: string
  /** The listing URL. */
  readonly url: URL
  readonly topic: string
  /** Bearer token; never logged. */
  readonly token: string | undefined
}

function listing(base: string, path: string): URL {
  const url = new URL(base)
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${path}`
  return url
}

/** The CRM and Inventory sources of design §3. */
export function sourcesFromConfig(config: Config): SourceSpec[] {
  return [
    {
      name: 'crm',
      entity: 'customer',
      label: 'Customer',
      url: listing(config.CRM_BASE_URL, '/customers'),
      topic: config.TOPIC_CUSTOMERS,
      token: config.CRM_TOKEN,
    },
    {
      name: 'inventory',
      entity: 'product',
      label: 'Product',
      url: listing(config.INVENTORY_BASE_URL, '/products'),
      topic: config.TOPIC_PRODUCTS,
      token: config.INVENTORY_TOKEN,
    },
  ]
}
