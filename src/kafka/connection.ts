/**
 * Connection settings shared by every Kafka client of the pipeline: where the brokers are, how to reach
 * them (TLS, SASL) and how long to wait before giving up. Nothing here logs: the options carry the SASL
 * secret, so they are handed to the client and never to a logger.
 */
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import type { BaseOptions, SASLOptions } from '@platformatic/kafka'
import type { Config } from '../config/env.ts'
import { ErrorCodes, PipelineError } from '../errors.ts'

/** The part of {@link Config} the Kafka layer reads; tests can build it without the rest. */
export type KafkaConfig = Pick<
  Config,
  | 'KAFKA_BROKERS'
  | 'KAFKA_CLIENT_ID'
  | 'KAFKA_TLS'
  | 'KAFKA_TLS_CA_FILE'
  | 'KAFKA_SASL_MECHANISM'
  | 'KAFKA_SASL_USERNAME'
  | 'KAFKA_SASL_PASSWORD'
>

/**
 * Time budgets of every client. The client retries an operation and, inside it, the API-version lookup
 * of a fresh connection, so a broker that accepts TCP but never answers costs up to
 * (retries + 1)² × requestMs: the deadlines of {@link withDeadline} are what bound a call for the caller.
 */
export const kafkaTimeouts = {
  /** TCP (and TLS) connect. */
  connectMs: 5_000,
  /** Client-side wait for one response; must exceed the consumer's fetch wait (maxWaitTime). */
  requestMs: 15_000,
  /** Broker-side budget sent in requests (produce acks=all, topic creation). Below requestMs. */
  brokerMs: 10_000,
  retries: 3,
  retryBaseDelayMs: 250,
  retryMaxDelayMs: 2_000,
  /** Default deadline of one publish or admin call as seen by our callers. */
  operationMs: 20_000,
} as const

/** Exponential backoff with full jitter, so clients restarted together do not retry in lockstep. */
function retryDelay(_client: unknown, _operationId: string, attempt: number): number {
  const cap = Math.min(
    kafkaTimeouts.retryBaseDelayMs * 2 ** Math.max(0, attempt - 1),
    kafkaTimeouts.retryMaxDelayMs,
  )
  return Math.round(cap * (0.5 + Math.random() / 2))
}

function saslOptions(config: KafkaConfig): SASLOptions | undefined {
  const {
    KAFKA_SASL_MECHANISM: mechanism,
    KAFKA_SASL_USERNAME: username,
    KAFKA_SASL_PASSWORD: password,
  } = config
  if (mechanism === undefined) return undefined
  if (username === undefined || password === undefined) {
    throw new PipelineError(
      ErrorCodes.CONFIG_INVALID,
      'Invalid configuration: KAFKA_SASL_MECHANISM is set but KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD is missing; expected both',
      { details: { variable: 'KAFKA_SASL_MECHANISM' } },
    )
  }
  // A provider function instead of the string: the client keeps its options around, and an inspected or
  // logged client then shows `[Function]` where the password would be.
  return { mechanism, username, password: () => password }
}

/** `host` of `host:port` (the form KAFKA_BROKERS allows). */
const hostOf = (broker: string): string => broker.slice(0, broker.lastIndexOf(':'))

function readCaFile(path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (error) {
    throw new PipelineError(
      ErrorCodes.CONFIG_INVALID,
      `Invalid configuration: KAFKA_TLS_CA_FILE=${JSON.stringify(path)} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}); expected the path of a PEM file`,
      { details: { variable: 'KAFKA_TLS_CA_FILE' } },
    )
  }
}

/**
 * The options every client (producer, consumer, admin) starts from.
 *
 * @param config - broker list, client id prefix, TLS and SASL settings
 * @param role - what the client is for (`producer`, `consumer`, `admin`, …); becomes the client id suffix
 *   so broker logs and quotas tell the pipeline's clients apart
 */
export function baseClientOptions(config: KafkaConfig, role: string): BaseOptions {
  const options: BaseOptions = {
    clientId: `${config.KAFKA_CLIENT_ID}-${role}`,
    bootstrapBrokers: [...config.KAFKA_BROKERS],
    connectTimeout: kafkaTimeouts.connectMs,
    requestTimeout: kafkaTimeouts.requestMs,
    timeout: kafkaTimeouts.brokerMs,
    retries: kafkaTimeouts.retries,
    retryDelay,
    // Topics are created on purpose (see topics.ts) with their partitions and policies, never implicitly.
    autocreateTopics: false,
  }
  if (config.KAFKA_TLS) {
    options.tls = config.KAFKA_TLS_CA_FILE === undefined ? {} : { ca: readCaFile(config.KAFKA_TLS_CA_FILE) }
    // Server name = the broker host, for SNI: managed clusters route on it. Not for an IP address
    // (RFC 6066 forbids it, and Node warns on stderr); the certificate is still checked against it.
    options.tlsServerName = !config.KAFKA_BROKERS.every((broker) => isIP(hostOf(broker)) !== 0)
  }
  const sasl = saslOptions(config)
  if (sasl !== undefined) options.sasl = sasl
  return options
}

/**
 * Settles like `operation`, or rejects with `PIPELINE_KAFKA_TIMEOUT` after `ms`. The operation itself is
 * not cancelled (the client has no abort): on a timeout its outcome is unknown, which the message says.
 *
 * @param what - names the operation in the error, e.g. `publish to customer_data`
 */
export async function withDeadline<T>(operation: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new PipelineError(
          ErrorCodes.KAFKA_TIMEOUT,
          `Kafka did not complete ${what} within ${ms} ms; its outcome is unknown (is the broker reachable?)`,
          { details: { operation: what, timeoutMs: ms } },
        ),
      )
    }, ms)
  })
  try {
    return await Promise.race([operation, deadline])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * One line naming what actually went wrong in a client error. The client wraps failures in aggregates
 * ("Creating topics failed.", "initProducerId failed 4 times.") whose own message says little; the
 * leaves say ECONNREFUSED, TOPIC_AUTHORIZATION_FAILED and the like.
 */
export function describeKafkaError(error: unknown): string {
  const leaves = new Set<string>()
  const visit = (e: unknown, depth: number): void => {
    if (depth < 8 && e instanceof AggregateError && e.errors.length > 0) {
      for (const inner of e.errors) visit(inner, depth + 1)
      return
    }
    if (!(e instanceof Error)) {
      leaves.add(String(e))
      return
    }
    const apiId = (e as { apiId?: unknown }).apiId
    let text = typeof apiId === 'string' && !e.message.includes(apiId) ? `${apiId}: ${e.message}` : e.message
    if (depth < 8 && e.cause instanceof Error) text += ` <- ${describeKafkaError(e.cause)}`
    leaves.add(text.replace(/\s*\n\s*/g, ' '))
  }
  visit(error, 0)
  const detail = [...leaves].join('; ')
  const head = error instanceof AggregateError ? error.message : ''
  return head === '' ? detail : `${head} (${detail})`
}

/** Depth-first search of a client error tree (aggregates and causes) for a node matching `test`. */
function findInError(error: unknown, test: (e: Error) => boolean, depth = 0): Error | undefined {
  if (depth > 8 || !(error instanceof Error)) return undefined
  if (test(error)) return error
  const children = [...(error instanceof AggregateError ? error.errors : []), error.cause]
  for (const child of children) {
    const found = findInError(child, test, depth + 1)
    if (found) return found
  }
  return undefined
}

/**
 * Whether `error` says Kafka is not there yet: the broker could not be reached (refused or dropped
 * connections, names that do not resolve yet, timeouts), answered that it cannot serve the request
 * yet (protocol errors the client marks retryable, such as NOT_CONTROLLER or LEADER_NOT_AVAILABLE),
 * or the topics have no leader yet: what a broker that is starting, or restarting, looks like.
 * Refusals by a broker that answered (credentials, TLS, invalid settings) are not.
 */
export function isKafkaUnreachable(error: unknown): boolean {
  if (error instanceof PipelineError && error.code === ErrorCodes.KAFKA_TIMEOUT) return true
  if (error instanceof PipelineError && error.code !== ErrorCodes.KAFKA_TOPIC_SETUP_FAILED) return false
  const notYet = (e: Error): boolean => {
    const { code, canRetry } = e as { code?: unknown; canRetry?: unknown }
    return (
      code === 'PLT_KFK_NETWORK' ||
      (code === 'PLT_KFK_PROTOCOL' && canRetry === true) ||
      e instanceof NotReadyYet
    )
  }
  return findInError(error, notYet) !== undefined
}

/** Kafka answered, but is not ready for what was asked yet (e.g. new topics without a leader). */
export class NotReadyYet extends Error {}

/**
 * `PIPELINE_KAFKA_AUTH_FAILED` when the broker refused the client's SASL credentials somewhere in
 * `error`, else undefined. The broker's own explanation is kept (Kafka never echoes the password);
 * retrying cannot help, so callers fail with this instead of a generic connection error.
 *
 * @param during - what the client was doing, e.g. `creating or checking the topics a, b`
 */
export function kafkaAuthFailure(error: unknown, during: string): PipelineError | undefined {
  const failed = findInError(
    error,
    (e) =>
      (e as { code?: unknown }).code === 'PLT_KFK_AUTHENTICATION' ||
      (e as { apiId?: unknown }).apiId === 'SASL_AUTHENTICATION_FAILED',
  )
  if (failed === undefined) return undefined
  const protocol = findInError(
    failed,
    (e) => typeof (e as { serverErrorMessage?: unknown }).serverErrorMessage === 'string',
  )
  const reason =
    (protocol as { serverErrorMessage?: string } | undefined)?.serverErrorMessage ?? failed.message
  return new PipelineError(
    ErrorCodes.KAFKA_AUTH_FAILED,
    `Kafka authentication failed while ${during}: the broker refused the SASL credentials (${reason.replace(/\s*\n\s*/g, ' ')}); check KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD`,
    { cause: error, details: { during } },
  )
}

// Node's codes for a certificate the client would not accept (OpenSSL verify errors, name mismatch).
const certificateCode = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/

/**
 * `PIPELINE_KAFKA_TLS_FAILED` when the client refused the broker's TLS certificate somewhere in
 * `error`, else undefined. Like a refused login, retrying cannot help.
 *
 * @param during - what the client was doing, e.g. `creating or checking the topics a, b`
 */
export function kafkaTlsFailure(error: unknown, during: string): PipelineError | undefined {
  const failed = findInError(error, (e) => certificateCode.test(String((e as { code?: unknown }).code ?? '')))
  if (failed === undefined) return undefined
  const code = String((failed as { code?: unknown }).code)
  // Node appends advice about --use-system-ca that does not apply to a configured client.
  const reason = failed.message.split(';')[0]?.trim() ?? failed.message
  return new PipelineError(
    ErrorCodes.KAFKA_TLS_FAILED,
    `Kafka TLS failed while ${during}: the broker's certificate was not accepted (${code}: ${reason}); set KAFKA_TLS_CA_FILE to the certificate or CA that signed it, or check the broker address`,
    { cause: error, details: { during, code } },
  )
}
