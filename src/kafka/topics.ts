/**
 * Which topics the pipeline needs and with which layout, and creating the missing ones at start-up.
 * Services call {@link ensureTopics} before producing or consuming; it never changes an existing topic
 * (partitions cannot shrink and re-partitioning a table moves keys), it reports what differs instead.
 */
import { type Admin, ConfigResourceTypes, findErrorBy } from '@platformatic/kafka'
import type { Config } from '../config/env.ts'
import { ErrorCodes, PipelineError } from '../errors.ts'
import {
  describeKafkaError,
  kafkaAuthFailure,
  kafkaTimeouts,
  kafkaTlsFailure,
  NotReadyYet,
  withDeadline,
} from './connection.ts'

/** `compact` keeps the latest value per key (a table); `delete` keeps everything for a retention time (a log). */
export type CleanupPolicy = 'compact' | 'delete'

/** What one topic must look like. */
export interface TopicSpec {
  readonly name: string
  readonly partitions: number
  readonly replicationFactor: number
  /** Topic-level configs, e.g. `cleanup.policy`; compared against an existing topic, never applied to it. */
  readonly configs: Readonly<Record<string, string>>
}

/** Options of {@link topicSpec}. */
export interface TopicSpecOptions {
  /** Default 1, right for the single local broker; 3 on a real cluster. */
  readonly replicationFactor?: number
  /** `retention.ms` of a `delete` topic; default the broker's. */
  readonly retentionMs?: number
  /** More configs, applied last. */
  readonly configs?: Readonly<Record<string, string>>
}

const DAY_MS = 24 * 60 * 60 * 1000

/** How long the DLQ keeps an entry: long enough to notice, fix and replay after a holiday. */
export const DLQ_RETENTION_MS = 30 * DAY_MS

/**
 * How long a compacted topic keeps a tombstone. Kafka's default (1 day) means a consumer that is down
 * longer, or a replay from the earliest offset, never sees some deletions; a week covers both.
 */
export const TOMBSTONE_RETENTION_MS = 7 * DAY_MS

/**
 * The DLQ has one partition: it is low-volume, and one partition gives `pipeline dlq` a single, total
 * order of failures to list and replay in, and makes an entry addressable by its offset alone.
 */
export const DLQ_PARTITIONS = 1

/**
 * Builds the spec of one topic; also what the consumer uses for its internal topics (refresh requests,
 * delayed retries).
 *
 * @param name - topic name
 * @param partitions - partition count (at least 1)
 * @param policy - `compact` for tables keyed by entity or view id, `delete` for logs
 */
export function topicSpec(
  name: string,
  partitions: number,
  policy: CleanupPolicy,
  options: TopicSpecOptions = {},
): TopicSpec {
  const replicationFactor = options.replicationFactor ?? 1
  const configs: Record<string, string> = { 'cleanup.policy': policy }
  if (policy === 'compact') configs['delete.retention.ms'] = String(TOMBSTONE_RETENTION_MS)
  if (policy === 'delete' && options.retentionMs !== undefined)
    configs['retention.ms'] = String(options.retentionMs)
  // With three or more replicas, acks=all only means something if a write needs more than the leader.
  if (replicationFactor >= 3) configs['min.insync.replicas'] = '2'
  return { name, partitions, replicationFactor, configs: { ...configs, ...options.configs } }
}

/**
 * The topics every service needs: the two source tables (compacted, `TOPIC_PARTITIONS` partitions) and
 * the DLQ (a log kept {@link DLQ_RETENTION_MS}, {@link DLQ_PARTITIONS} partition).
 *
 * @param replicationFactor - replicas per partition; default 1 (the local single broker)
 */
export function pipelineTopicSpecs(
  config: Pick<Config, 'TOPIC_CUSTOMERS' | 'TOPIC_PRODUCTS' | 'TOPIC_DLQ' | 'TOPIC_PARTITIONS'>,
  replicationFactor = 1,
): TopicSpec[] {
  const partitions = config.TOPIC_PARTITIONS
  return [
    topicSpec(config.TOPIC_CUSTOMERS, partitions, 'compact', { replicationFactor }),
    topicSpec(config.TOPIC_PRODUCTS, partitions, 'compact', { replicationFactor }),
    topicSpec(config.TOPIC_DLQ, DLQ_PARTITIONS, 'delete', {
      replicationFactor,
      retentionMs: DLQ_RETENTION_MS,
    }),
  ]
}

/** Something about an existing topic that differs from its spec; worth a warning log, not a crash. */
export type TopicWarning =
  | {
      readonly kind: 'fewer-partitions'
      readonly topic: string
      readonly expected: number
      readonly actual: number
    }
  | {
      readonly kind: 'config-differs'
      readonly topic: string
      readonly config: string
      readonly expected: string
      readonly actual: string | null
    }

/** What {@link ensureTopics} did. */
export interface EnsureTopicsResult {
  /** Created by this call. */
  readonly created: string[]
  /** Already there (including ones another process created while this call ran). */
  readonly existing: string[]
  readonly warnings: TopicWarning[]
}

/** Options of {@link ensureTopics}. */
export interface EnsureTopicsOptions {
  /** Bound of the whole call; default {@link kafkaTimeouts}.operationMs. */
  readonly timeoutMs?: number
}

function isTopicAlreadyExists(error: unknown): boolean {
  return error instanceof Error && findErrorBy(error, 'apiId', 'TOPIC_ALREADY_EXISTS') !== null
}

async function createTopic(admin: Admin, spec: TopicSpec): Promise<boolean> {
  try {
    await admin.createTopics({
      topics: [{ topic: spec.name, partitions: spec.partitions, replicas: spec.replicationFactor }],
      configs: Object.entries(spec.configs).map(([name, value]) => ({ name, value })),
    })
    return true
  } catch (error) {
    // Another replica starting at the same time won the race: the topic is there, which is all we want.
    if (isTopicAlreadyExists(error)) return false
    throw error
  }
}

async function compareWithSpecs(admin: Admin, specs: readonly TopicSpec[]): Promise<TopicWarning[]> {
  if (specs.length === 0) return []
  const warnings: TopicWarning[] = []
  const metadata = await admin.metadata({ topics: specs.map((s) => s.name), forceUpdate: true })
  for (const spec of specs) {
    const actual = metadata.topics.get(spec.name)?.partitionsCount ?? 0
    if (actual < spec.partitions) {
      warnings.push({ kind: 'fewer-partitions', topic: spec.name, expected: spec.partitions, actual })
    }
  }
  const described = await admin.describeConfigs({
    resources: specs.map((s) => ({
      resourceType: ConfigResourceTypes.TOPIC,
      resourceName: s.name,
      configurationKeys: Object.keys(s.configs),
    })),
  })
  for (const spec of specs) {
    const configs = described.find((d) => d.resourceName === spec.name)?.configs ?? []
    for (const [config, expected] of Object.entries(spec.configs)) {
      const actual = configs.find((c) => c.name === config)?.value ?? null
      if (actual !== expected)
        warnings.push({ kind: 'config-differs', topic: spec.name, config, expected, actual })
    }
  }
  return warnings
}

/** Waits until new topics are in the metadata with a leader per partition, so a produce right after works. */
async function awaitLeaders(admin: Admin, specs: readonly TopicSpec[], deadlineAt: number): Promise<void> {
  const names = specs.map((s) => s.name)
  // The deadline is checked here too: withDeadline stops waiting but cannot stop this loop.
  for (let attempt = 0; Date.now() < deadlineAt; attempt++) {
    // Until the broker's metadata has caught up, the client answers "Unknown topic": not ready yet.
    const metadata = await admin.metadata({ topics: names, forceUpdate: true }).catch(() => undefined)
    const ready = names.every((name) => {
      const partitions = metadata?.topics.get(name)?.partitions ?? []
      return partitions.length > 0 && partitions.every((p) => p.leader >= 0)
    })
    if (ready) return
    await new Promise((resolve) => setTimeout(resolve, Math.min(50 * 2 ** attempt, 500)))
  }
  throw new NotReadyYet(`the topics ${names.join(', ')} have no leader yet`)
}

async function ensure(
  admin: Admin,
  specs: readonly TopicSpec[],
  deadlineAt: number,
): Promise<EnsureTopicsResult> {
  const present = new Set(await admin.listTopics())
  const created: string[] = []
  const existing: TopicSpec[] = []
  // Topics this call or a racing process just created: the metadata may not show them yet.
  const fresh: TopicSpec[] = []
  for (const spec of specs) {
    if (present.has(spec.name)) {
      existing.push(spec)
    } else {
      if (await createTopic(admin, spec)) created.push(spec.name)
      else existing.push(spec)
      fresh.push(spec)
    }
  }
  if (fresh.length > 0) await awaitLeaders(admin, fresh, deadlineAt)
  const warnings = await compareWithSpecs(admin, existing)
  return { created, existing: existing.map((s) => s.name), warnings }
}

/**
 * Creates the topics of `specs` that do not exist yet, with their partitions, replication factor and
 * configs, and waits until they are usable. Idempotent and safe when several processes race (a topic
 * created by another process counts as existing). Existing topics are left as they are; one with fewer
 * partitions than its spec, or with a spec'd config of another value, is reported in `warnings`.
 *
 * @throws {PipelineError} `PIPELINE_KAFKA_TOPIC_SETUP_FAILED` when the broker refuses (authorization,
 *   invalid config, replication factor above the broker count) or `PIPELINE_KAFKA_TIMEOUT` when it does
 *   not answer in time.
 */
export async function ensureTopics(
  admin: Admin,
  specs: readonly TopicSpec[],
  options: EnsureTopicsOptions = {},
): Promise<EnsureTopicsResult> {
  const names = specs.map((s) => s.name).join(', ')
  const timeoutMs = options.timeoutMs ?? kafkaTimeouts.operationMs
  try {
    return await withDeadline(
      ensure(admin, specs, Date.now() + timeoutMs),
      timeoutMs,
      `ensureTopics(${names})`,
    )
  } catch (error) {
    if (error instanceof PipelineError) throw error
    // The first call a service makes: wrong credentials or an untrusted certificate surface here, and
    // deserve their own codes.
    throw (
      kafkaAuthFailure(error, `creating or checking the topics ${names}`) ??
      kafkaTlsFailure(error, `creating or checking the topics ${names}`) ??
      new PipelineError(
        ErrorCodes.KAFKA_TOPIC_SETUP_FAILED,
        `Could not create or check the Kafka topics ${names}: ${describeKafkaError(error)}`,
        { cause: error, details: { topics: specs.map((s) => s.name) } },
      )
    )
  }
}
