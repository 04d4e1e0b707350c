/**
 * What the integration set-up (scripts/with-infra.ts) hands to the tests: real Kafka, Redis and the
 * Prism mock of CRM + Inventory. Each test still isolates itself with unique names.
 */
import { randomBytes } from 'node:crypto'

function required(name: string): string {
  const value = process.env[name]
  if (value === undefined || value === '') {
    throw new Error(`${name} is not set: run integration tests through \`npm run test:integration\``)
  }
  return value
}

/** Connection details of the real infrastructure the integration tests run against. */
export const testInfra = {
  get kafkaBrokers(): string[] {
    return required('KAFKA_BROKERS').split(',')
  },
  get redisUrl(): string {
    return required('REDIS_URL')
  },
  /** Base URL of Prism serving openapi/crm-inventory.yaml (CRM and Inventory). */
  get prismUrl(): string {
    return required('PRISM_URL')
  },
}

/** A name no other test (or earlier run) uses: for topics, groups and Redis key prefixes. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`
}
