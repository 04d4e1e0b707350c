/**
 * The DLQ operations behind `pipeline dlq` and the consumer's admin endpoint (I/O): list, show and
 * replay, on the connections the caller owns (Redis, a producer), so the consumer reuses its own.
 */
import type { Config } from '../config/env.ts'
import type { RecordOrigin } from '../domain/envelope.ts'
import { ErrorCodes, PipelineError } from '../errors.ts'
import type { MessagePublisher } from '../kafka/ports.ts'
import type { Logger } from '../observability/logger.ts'
import { sourcesFromConfig } from '../sources/catalog.ts'
import { DeliveryStore } from '../state/delivery-store.ts'
import { EntityStore } from '../state/entity-store.ts'
import type { Redis } from '../state/redis.ts'
import { type LedgerMark, ReplayLedger } from '../state/replay-ledger.ts'
import { type DlqFilter, selectItems } from './filter.ts'
import { type DlqListRow, type DlqSummary, type ReplayMark, summarize, toListRow } from './format.ts'
import { type DlqItem, itemTime } from './item.ts'
import { readDlq } from './reader.ts'
import { type PlannedReplay, planReplay, type ReplayReport } from './replay-plan.ts'
import { type ExecuteOptions, executeReplay } from './replayer.ts'

/** The connections and settings the operations run on. */
export interface DlqDeps {
  readonly config: Config
  /** Undefined: replay status unknown (listing still works; replays need it). */
  readonly redis: Redis | undefined
  /** Needed by replays only (not by dry runs). */
  readonly publisher?: MessagePublisher | undefined
  /** Redis key prefix of the deployment; default `PIPELINE_REDIS_PREFIX`. */
  readonly prefix?: string | undefined
  readonly logger?: Logger | undefined
}

/** A listing. */
export interface DlqListing {
  readonly topic: string
  /** The earliest retained and the next offset. */
  readonly earliest: string
  readonly end: string
  readonly rows: DlqListRow[]
  readonly summary: DlqSummary
}

/** A replay planned and ready to run (or to show for confirmation). */
export interface PreparedReplay {
  readonly topic: string
  readonly plan: readonly PlannedReplay[]
}

const mark = (m: LedgerMark | undefined): ReplayMark | null =>
  m === undefined ? null : { at: m.at, outcome: m.outcome }

/** The source topics and how a record is published to each. */
export function sourceOrigins(config: Config): Map<string, RecordOrigin> {
  const sources = sourcesFromConfig(config)
  return new Map(sources.map((s) => [s.topic, { name: s.name, entity: s.entity, topic: s.topic }]))
}

/** List, show and replay over one deployment's DLQ. */
export class DlqOperations {
  readonly #deps: DlqDeps
  readonly #ledger: ReplayLedger | undefined
  #replaying = false

  constructor(deps: DlqDeps) {
    this.#deps = deps
    this.#ledger =
      deps.redis === undefined
        ? undefined
        : new ReplayLedger(deps.redis, deps.prefix ?? deps.config.PIPELINE_REDIS_PREFIX)
  }

  /** The DLQ topic. */
  get topic(): string {
    return this.#deps.config.TOPIC_DLQ
  }

  async #marks(items: readonly DlqItem[]): Promise<Map<string, LedgerMark> | undefined> {
    if (this.#ledger === undefined) return undefined
    return this.#ledger.marks(
      this.topic,
      items.map((item) => ({ offset: item.offset, failedAt: itemTime(item) })),
    )
  }

  /** The entries passing `filter`, as rows with their replay status, and their summary. */
  async list(filter: DlqFilter): Promise<DlqListing> {
    const read = await readDlq(this.#deps.config)
    const items = selectItems(read.items, filter)
    const marks = await this.#marks(items)
    const rows = items.map((item) =>
      toListRow(item, marks === undefined ? undefined : mark(marks.get(item.offset))),
    )
    return {
      topic: read.topic,
      earliest: String(read.earliest),
      end: String(read.end),
      rows,
      summary: summarize(rows),
    }
  }

  /**
   * The entry at `offset`, with its replay status.
   *
   * @throws {PipelineError} `PIPELINE_DLQ_NOT_FOUND` when the DLQ holds no entry there
   */
  async show(offset: string): Promise<{ item: DlqItem; replayed: ReplayMark | null | undefined }> {
    if (!/^\d+$/.test(offset)) {
      throw new PipelineError(
        ErrorCodes.USAGE,
        `${JSON.stringify(offset)} is not an offset; expected a whole number`,
      )
    }
    const read = await readDlq(this.#deps.config, { upTo: BigInt(offset) })
    const item = read.items.find((i) => i.offset === offset)
    if (item === undefined) {
      const held =
        read.end > read.earliest ? `it holds offsets ${read.earliest} to ${read.end - 1n}` : 'it is empty'
      throw new PipelineError(
        ErrorCodes.DLQ_NOT_FOUND,
        `${read.topic} has no entry at offset ${offset}; ${held}`,
        {
          details: { offset },
        },
      )
    }
    const marks = await this.#marks([item])
    return { item, replayed: marks === undefined ? undefined : mark(marks.get(offset)) }
  }

  /** Reads the DLQ and plans the replay of the entries passing `filter` (nothing is changed). */
  async prepareReplay(filter: DlqFilter): Promise<PreparedReplay> {
    const ledger = this.#requireLedger()
    const read = await readDlq(this.#deps.config)
    const items = selectItems(read.items, filter)
    const marks = await ledger.marks(
      read.topic,
      items.map((item) => ({ offset: item.offset, failedAt: itemTime(item) })),
    )
    await ledger.prune(read.topic, read.earliest).catch(() => 0)
    const plan = planReplay(items, { sources: sourceOrigins(this.#deps.config), replayed: marks })
    return { topic: read.topic, plan }
  }

  /**
   * Carries out `prepared` (see {@link executeReplay}). One replay runs at a time per process.
   *
   * @throws {PipelineError} `PIPELINE_DLQ_REPLAY_BUSY` when another replay of this process is running
   */
  async replay(prepared: PreparedReplay, options: ExecuteOptions = {}): Promise<ReplayReport> {
    const ledger = this.#requireLedger()
    const { redis, publisher, prefix, logger, config } = this.#deps
    if (redis === undefined) throw new Error('a replay needs Redis')
    if (publisher === undefined && options.dryRun !== true) throw new Error('a replay needs a Kafka producer')
    // A dry run publishes nothing, so it needs no producer.
    const send: MessagePublisher = publisher ?? {
      send: () => Promise.reject(new Error('a dry run publishes nothing')),
    }
    if (this.#replaying) {
      throw new PipelineError(
        ErrorCodes.DLQ_REPLAY_BUSY,
        'a DLQ replay is already running in this process; try again when it ends',
      )
    }
    this.#replaying = true
    try {
      return await executeReplay(
        {
          ledger,
          deliveries: new DeliveryStore(redis, prefix ?? config.PIPELINE_REDIS_PREFIX),
          entities: new EntityStore(redis, prefix ?? config.PIPELINE_REDIS_PREFIX),
          publisher: send,
          refreshTopic: config.TOPIC_REFRESH,
          logger,
        },
        prepared.topic,
        prepared.plan,
        options,
      )
    } finally {
      this.#replaying = false
    }
  }

  #requireLedger(): ReplayLedger {
    if (this.#ledger === undefined) throw new Error('a replay needs Redis (the replay ledger)')
    return this.#ledger
  }
}
