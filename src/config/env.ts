/**
 * The environment-variable schema of every `pipeline` process (12-factor). Validation is strict and
 * reports the first problem as one line naming the variable, what is wrong and the expected form.
 */
import { z } from 'zod'
import { ErrorCodes, PipelineError } from '../errors.ts'

interface VarSpec {
  /** What a valid value looks like, shown when the value is rejected. */
  readonly expected: string
  /** Secrets are never echoed back in errors, logs or metrics. */
  readonly secret?: boolean
  readonly schema: z.ZodType
  /** One line for the README's configuration table. */
  readonly doc: string
}

const wholeNumber = (min: number, max: number, fallback: number) =>
  z.coerce.number().int().min(min).max(max).default(fallback)

const optionalWholeNumber = (min: number, max: number) => z.coerce.number().int().min(min).max(max).optional()

const httpUrl = z.url({ protocol: /^https?$/ })

const brokerList = z
  .string()
  .transform((raw) => raw.split(',').map((b) => b.trim()))
  .pipe(z.array(z.string().regex(/^[^\s:,]+:\d{1,5}$/)).min(1))

const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')

const topicName = z.string().regex(/^[A-Za-z0-9._-]{1,249}$/)

const secret = z.string().min(1).optional()

/** Every variable the services read, with its schema and documentation. */
export const envSpec = {
  KAFKA_BROKERS: {
    expected: 'comma-separated host:port list, e.g. 127.0.0.1:9092',
    doc: 'Kafka bootstrap brokers. When set, the local launcher starts no broker.',
    schema: brokerList.default(['127.0.0.1:9092']),
  },
  KAFKA_CLIENT_ID: {
    expected: 'a short name',
    doc: 'Kafka client id prefix.',
    schema: z.string().min(1).default('integration-pipeline'),
  },
  KAFKA_TLS: {
    expected: 'true or false',
    doc: 'Connect to Kafka over TLS.',
    schema: bool.default(false),
  },
  KAFKA_TLS_CA_FILE: {
    expected: 'the path of a PEM file',
    doc: 'With KAFKA_TLS: the certificate(s) to trust instead of the system CAs (a private CA, or the local broker’s self-signed certificate).',
    schema: z.string().min(1).optional(),
  },
  KAFKA_SASL_MECHANISM: {
    expected: 'PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512',
    doc: 'SASL mechanism for Kafka; unset means no SASL.',
    schema: z.enum(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']).optional(),
  },
  KAFKA_SASL_USERNAME: {
    expected: 'a user name',
    doc: 'SASL user name.',
    schema: z.string().min(1).optional(),
  },
  KAFKA_SASL_PASSWORD: {
    expected: 'a non-empty secret',
    secret: true,
    doc: 'SASL password (secret).',
    schema: secret,
  },
  KAFKA_STARTUP_TIMEOUT_MS: {
    expected: 'milliseconds between 0 and 86400000',
    doc: 'How long a starting service waits for an unreachable Kafka (connection refused, timeouts), trying again with a warning each time, before it exits 1. Credentials, TLS and topic settings the broker refuses fail at once. 0: no wait.',
    schema: wholeNumber(0, 86_400_000, 300_000),
  },
  REDIS_URL: {
    expected: 'redis://[user:password@]host:port[/db] or rediss://…',
    secret: true,
    doc: 'Redis for state, idempotency and leases. When set, the local launcher starts no Redis.',
    schema: z.url({ protocol: /^rediss?$/ }).default('redis://127.0.0.1:6379'),
  },
  REDIS_STARTUP_TIMEOUT_MS: {
    expected: 'milliseconds between 0 and 86400000',
    doc: 'How long a starting service waits for an unreachable Redis (reconnecting, with one warning), before it exits 1 with the last error. 0: no wait.',
    schema: wholeNumber(0, 86_400_000, 300_000),
  },
  PIPELINE_REDIS_PREFIX: {
    expected: 'a key prefix ([A-Za-z0-9._:-], at most 100 characters), e.g. pipeline',
    doc: 'Prefix of every Redis key the services write: two deployments can share one Redis.',
    schema: z
      .string()
      .regex(/^[A-Za-z0-9._:-]{1,100}$/)
      .default('pipeline'),
  },
  CRM_BASE_URL: {
    expected: 'an http(s) URL, e.g. http://127.0.0.1:4010',
    doc: 'CRM base URL; the producer polls `GET {CRM_BASE_URL}/customers`.',
    schema: httpUrl.default('http://127.0.0.1:4010'),
  },
  INVENTORY_BASE_URL: {
    expected: 'an http(s) URL, e.g. http://127.0.0.1:4010',
    doc: 'Inventory base URL; the producer polls `GET {INVENTORY_BASE_URL}/products`.',
    schema: httpUrl.default('http://127.0.0.1:4010'),
  },
  CRM_TOKEN: {
    expected: 'a non-empty secret',
    secret: true,
    doc: 'Bearer token sent to the CRM (secret).',
    schema: secret,
  },
  INVENTORY_TOKEN: {
    expected: 'a non-empty secret',
    secret: true,
    doc: 'Bearer token sent to the Inventory (secret).',
    schema: secret,
  },
  ANALYTICS_URL: {
    expected: 'an http(s) URL, e.g. http://127.0.0.1:4020/analytics/data',
    doc: 'Where merged views are POSTed.',
    schema: httpUrl.default('http://127.0.0.1:4020/analytics/data'),
  },
  ANALYTICS_TOKEN: {
    expected: 'a non-empty secret',
    secret: true,
    doc: 'Bearer token sent to Analytics (secret).',
    schema: secret,
  },
  ADMIN_TOKEN: {
    expected: 'a secret of at least 16 characters',
    secret: true,
    doc: 'Token for admin actions (DLQ replay); admin endpoints are off when unset (secret).',
    schema: z.string().min(16).optional(),
  },
  POLL_INTERVAL_MS: {
    expected: 'milliseconds between 100 and 86400000, e.g. 60000',
    doc: 'How often each source is polled.',
    schema: wholeNumber(100, 86_400_000, 60_000),
  },
  METRICS_HOST: {
    expected: 'an interface address, e.g. 127.0.0.1 or 0.0.0.0',
    doc: 'Interface the metrics/health server binds to.',
    schema: z.string().min(1).default('127.0.0.1'),
  },
  METRICS_PORT: {
    expected: 'a TCP port between 0 and 65535',
    doc: 'Metrics/health port (default 9001 for the producer, 9000 for the consumer).',
    schema: optionalWholeNumber(0, 65_535),
  },
  LOG_LEVEL: {
    expected: 'one of fatal, error, warn, info, debug, trace, silent',
    doc: 'Log level.',
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  },
  LOG_FORMAT: {
    expected: 'auto, json or pretty',
    doc: 'Log lines as JSON, or pretty for people; auto is pretty exactly when stdout is a terminal.',
    schema: z.enum(['auto', 'json', 'pretty']).default('auto'),
  },
  TOPIC_CUSTOMERS: {
    expected: 'a Kafka topic name ([A-Za-z0-9._-], at most 249 characters)',
    doc: 'Customer source topic.',
    schema: topicName.default('customer_data'),
  },
  TOPIC_PRODUCTS: {
    expected: 'a Kafka topic name ([A-Za-z0-9._-], at most 249 characters)',
    doc: 'Product source topic.',
    schema: topicName.default('inventory_data'),
  },
  TOPIC_DLQ: {
    expected: 'a Kafka topic name ([A-Za-z0-9._-], at most 249 characters)',
    doc: 'Dead letter topic.',
    schema: topicName.default('analytics_DLQ'),
  },
  TOPIC_PARTITIONS: {
    expected: 'a whole number between 1 and 1000',
    doc: 'Partitions of topics the services create.',
    schema: wholeNumber(1, 1000, 6),
  },
  RETRY_MAX_ATTEMPTS: {
    expected: 'a whole number between 1 and 100',
    doc: 'Attempts per HTTP call (source or sink) before giving up.',
    schema: wholeNumber(1, 100, 5),
  },
  RETRY_BASE_DELAY_MS: {
    expected: 'milliseconds between 1 and 60000',
    doc: 'First backoff delay; later ones grow exponentially with full jitter.',
    schema: wholeNumber(1, 60_000, 200),
  },
  RETRY_MAX_DELAY_MS: {
    expected: 'milliseconds between 1 and 600000',
    doc: 'Cap of one backoff delay (also caps `Retry-After`).',
    schema: wholeNumber(1, 600_000, 30_000),
  },
  SOURCE_TIMEOUT_MS: {
    expected: 'milliseconds between 100 and 600000',
    doc: 'Timeouts of a source call: connect, headers, and the wait for each body chunk (`SOURCE_REQUEST_DEADLINE_MS` bounds the whole answer).',
    schema: wholeNumber(100, 600_000, 10_000),
  },
  SOURCE_REQUEST_DEADLINE_MS: {
    expected: 'milliseconds between 100 and 3600000',
    doc: 'Whole-request deadline of one source call, body included (a slow-loris body that beats the per-chunk timeout still ends here); a retryable failure.',
    schema: wholeNumber(100, 3_600_000, 60_000),
  },
  SOURCE_MAX_RESPONSE_BYTES: {
    expected: 'bytes between 1024 and 1073741824',
    doc: 'Largest source response page accepted; a larger one fails the cycle.',
    schema: wholeNumber(1024, 1_073_741_824, 64 * 1024 * 1024),
  },
  SOURCE_MAX_PAGES: {
    expected: 'a whole number between 1 and 1000000',
    doc: 'Most pages followed in one listing; more fails the cycle (endless pagination).',
    schema: wholeNumber(1, 1_000_000, 10_000),
  },
  SOURCE_MAX_INVALID_RECORDS: {
    expected: 'a whole number between 0 and 1000000',
    doc: 'Most invalid (or duplicate-id) records dead-lettered from one listing; more fails the cycle, publishing and deleting nothing (a source answering junk is broken).',
    schema: wholeNumber(0, 1_000_000, 1000),
  },
  SOURCE_SCAN_THREADS: {
    expected: 'a whole number between 0 and 16',
    doc: 'Worker threads that fetch, parse, validate and hash source pages. A listing paged by `page`/`pageSize`/`total` is read by two of them at once (every other page each) once its first page is in; other listings run on one. 0 does it all on the main thread.',
    schema: wholeNumber(0, 16, 2),
  },
  MAX_DELETE_RATIO: {
    expected: 'a fraction between 0 and 1, e.g. 0.5',
    doc: 'Mass-deletion guard: a cycle that would delete more than this share of the known ids deletes nothing.',
    schema: z.coerce.number().min(0).max(1).default(0.5),
  },
  SINK_TIMEOUT_MS: {
    expected: 'milliseconds between 100 and 600000',
    doc: 'Per-request timeout of an Analytics delivery (connect, headers and body each).',
    schema: wholeNumber(100, 600_000, 10_000),
  },
  SINK_LATE_ARRIVAL_MS: {
    expected: 'milliseconds between 0 and 3600000',
    doc: 'How long after the consumer gave up on a request (timeout, cut connection, crash) Analytics may still store it. Until then no other content of that view is sent, since the late request would overwrite it.',
    schema: wholeNumber(0, 3_600_000, 10_000),
  },
  SINK_CONCURRENCY: {
    expected: 'a whole number between 1 and 1024',
    doc: 'Most Analytics requests in flight at once, and keep-alive connections to Analytics.',
    schema: wholeNumber(1, 1024, 64),
  },
  SINK_BATCH_SIZE: {
    expected: 'a whole number between 1 and 1000',
    doc: 'Views per Analytics request. 1: one POST per view to `ANALYTICS_URL` (the contract). More: opt-in batch mode, up to this many views per POST to `ANALYTICS_BATCH_URL`, each with its own idempotency key.',
    schema: wholeNumber(1, 1000, 1),
  },
  ANALYTICS_BATCH_URL: {
    expected: 'an http(s) URL, e.g. http://127.0.0.1:4020/analytics/data/batch',
    doc: 'Batch endpoint of batch mode (`SINK_BATCH_SIZE` > 1), taking `{ items: [{ idempotencyKey, record }] }` and answering `{ results: [{ idempotencyKey, status }] }`; default `ANALYTICS_URL` + `/batch`.',
    schema: httpUrl.optional(),
  },
  BREAKER_FAILURE_THRESHOLD: {
    expected: 'a whole number between 1 and 10000',
    doc: 'Failed Analytics requests in a row (any view) after which the sink probes its health; a failed probe opens the circuit.',
    schema: wholeNumber(1, 10_000, 10),
  },
  BREAKER_HALF_OPEN_AFTER_MS: {
    expected: 'milliseconds between 100 and 600000',
    doc: 'How long the circuit stays open before the next probe of Analytics.',
    schema: wholeNumber(100, 600_000, 5000),
  },
  LEASE_TTL_MS: {
    expected: 'milliseconds between 1000 and 600000',
    doc: 'Producer lease per source (HA): a dead holder is replaced after at most this long.',
    schema: wholeNumber(1000, 600_000, 15_000),
  },
  CONSUMER_GROUP: {
    expected: 'a consumer group name ([A-Za-z0-9._-])',
    doc: 'Consumer group prefix: stage 1 joins `<group>.state`, stage 2 `<group>.deliver`.',
    schema: topicName.default('pipeline-consumer'),
  },
  KAFKA_SESSION_TIMEOUT_MS: {
    expected: 'milliseconds between 6000 and 300000',
    doc: 'A consumer silent this long (crashed) leaves its group and its partitions move to the others.',
    schema: wholeNumber(6000, 300_000, 30_000),
  },
  TOPIC_REFRESH: {
    expected: 'a Kafka topic name ([A-Za-z0-9._-], at most 249 characters)',
    doc: 'Internal topic of view refresh requests between the two consumer stages (packed by shard of view id, keyed `views#<shard>`).',
    schema: topicName.default('pipeline_view_refresh'),
  },
  CONSUMER_BATCH_SIZE: {
    expected: 'a whole number between 1 and 100000',
    doc: 'Most records a consumer stage handles at once (fewer when fewer are waiting).',
    schema: wholeNumber(1, 100_000, 1000),
  },
  CONSUMER_STALL_TIMEOUT_MS: {
    expected: 'milliseconds between 1000 and 3600000',
    doc: 'A consumer stage whose fetches go unanswered this long while it should be reading (not paused, room to buffer), or that leaves the records of an assigned partition unfetched this long (or uncommitted while it has nothing in hand), is replaced by a new group member, with a warning and pipeline_consumer_stalls_total. Keep it above a rebalance (60 s).',
    schema: wholeNumber(1000, 3_600_000, 120_000),
  },
  DELIVERY_RETRY_ROUNDS: {
    expected: 'a whole number between 0 and 100',
    doc: 'Off-path retry rounds of a view that exhausted its in-line attempts before it is dead-lettered.',
    schema: wholeNumber(0, 100, 3),
  },
  DELIVERY_RETRY_DELAY_MS: {
    expected: 'milliseconds between 10 and 3600000',
    doc: 'Delay before the first off-path retry round of a failing view; doubles each round.',
    schema: wholeNumber(10, 3_600_000, 10_000),
  },
  LOW_STOCK_THRESHOLD: {
    expected: 'a whole number between 0 and 1000000000',
    doc: 'A product with less stock counts as low stock in the customer view summary.',
    schema: wholeNumber(0, 1_000_000_000, 10),
  },
  MOCK_ANALYTICS_HOST: {
    expected: 'an interface address, e.g. 127.0.0.1',
    doc: 'Interface of `pipeline mock-analytics`.',
    schema: z.string().min(1).default('127.0.0.1'),
  },
  MOCK_ANALYTICS_PORT: {
    expected: 'a TCP port between 0 and 65535',
    doc: 'Port of `pipeline mock-analytics`.',
    schema: wholeNumber(0, 65_535, 4020),
  },
  MOCK_ANALYTICS_STATE_FILE: {
    expected: 'a file path',
    doc: 'Where `pipeline mock-analytics` keeps what it accepted (JSON Lines, appended per accepted delivery, read back at start), so it holds its views across restarts as a real Analytics would; unset: memory only. `pipeline up` keeps it in `.cache/local/`.',
    schema: z.string().min(1).optional(),
  },
} as const satisfies Record<string, VarSpec>

/** Names of every environment variable the services read. */
export type EnvVarName = keyof typeof envSpec

/** The validated configuration, keyed by variable name. */
export type Config = { readonly [K in EnvVarName]: z.output<(typeof envSpec)[K]['schema']> }

/** Every variable name, for documentation and for checks that deployment files only set real ones. */
export const envVarNames = Object.keys(envSpec) as EnvVarName[]

/** Names of the variables that hold secrets; their values must never be logged. */
export const secretEnvVarNames = envVarNames.filter(
  (name) => 'secret' in envSpec[name] && envSpec[name].secret,
)

/**
 * Validates the environment and returns the typed configuration.
 *
 * @throws {PipelineError} `PIPELINE_CONFIG_INVALID` with one line naming the first bad variable, what
 *   is wrong with it (without echoing secrets) and the expected form.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const out: Record<string, unknown> = {}
  for (const name of envVarNames) {
    const spec: VarSpec = envSpec[name]
    const raw = env[name] === '' ? undefined : env[name]
    const result = spec.schema.safeParse(raw)
    if (!result.success) {
      const shown = spec.secret ? '(secret value hidden)' : JSON.stringify(raw)
      const problem = result.error.issues[0]?.message ?? 'invalid value'
      throw new PipelineError(
        ErrorCodes.CONFIG_INVALID,
        `Invalid configuration: ${name}=${shown}: ${problem.toLowerCase()}; expected ${spec.expected}`,
        { details: { variable: name } },
      )
    }
    out[name] = result.data
  }
  const config = out as Config
  if (
    config.KAFKA_SASL_MECHANISM !== undefined &&
    (!config.KAFKA_SASL_USERNAME || !config.KAFKA_SASL_PASSWORD)
  ) {
    throw new PipelineError(
      ErrorCodes.CONFIG_INVALID,
      'Invalid configuration: KAFKA_SASL_MECHANISM is set but KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD is missing; expected both',
      { details: { variable: 'KAFKA_SASL_MECHANISM' } },
    )
  }
  return config
}
