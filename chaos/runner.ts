/**
 * A chaos run: the whole pipeline (one producer pair, three consumers) on its own infrastructure,
 * continuous source changes, a seeded schedule of SIGKILLs and outages, then the drain to
 * quiescence and the end checks. `npm run chaos` and `test/integration/chaos.test.ts` both run this.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { ListOffsetTimestamps } from '@platformatic/kafka'
import { type Config, envVarNames, loadConfig } from '../src/config/env.ts'
import type { DlqEntry } from '../src/dlq/entry.ts'
import { consumerLag, createAdmin, offsetsAt, type PartitionLag } from '../src/kafka/admin.ts'
import { createProducer, publish } from '../src/kafka/producer.ts'
import { createLogger } from '../src/observability/logger.ts'
import { connectRedis } from '../src/state/redis.ts'
import { heldViews } from '../test/helpers/consumer.ts'
import { readTopicFrom } from '../test/helpers/kafka.ts'
import { watchKeys } from '../test/helpers/key-ledger.ts'
import { endCheckProblems, expectedJoin, POISON_KEY_PREFIX, tallyDlq } from './checks.ts'
import type { ChaosOptions, FaultKind } from './options.ts'
import type { ChaosFigures } from './report.ts'
import { buildSchedule, type ChaosStep, describeStep, type Role, replicas } from './schedule.ts'
import { ServiceSlot, type UnexpectedExit, waitUptime } from './services.ts'
import { type ChaosStack, startChaosStack } from './stack.ts'

/** What a run found. */
export interface ChaosResult {
  readonly figures: ChaosFigures
  /** Failed end checks; empty when the run passed. */
  readonly problems: string[]
  /** How often each fault kind was carried out (so a test can prove none was skipped). */
  readonly performed: Readonly<Record<FaultKind, number>>
  readonly unexpectedExits: readonly UnexpectedExit[]
  /** The run folder (kept when the run failed or `keep` was set). */
  readonly runDir: string
}

const REDIS_PREFIX = 'chaos'
const SINK_TIMEOUT_MS = 2000

/** The services' environment: the run's infrastructure, nothing inherited that the services read. */
function serviceEnv(stack: ChaosStack, options: ChaosOptions): Record<string, string> {
  const inherited: Record<string, string> = {}
  const ours = new Set<string>(envVarNames)
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !ours.has(name)) inherited[name] = value
  }
  return {
    ...inherited,
    KAFKA_BROKERS: stack.brokers.join(','),
    REDIS_URL: stack.redisUrl,
    PIPELINE_REDIS_PREFIX: REDIS_PREFIX,
    CRM_BASE_URL: stack.sim.url,
    INVENTORY_BASE_URL: stack.sim.url,
    ANALYTICS_URL: `${stack.sink.url}/analytics/data`,
    POLL_INTERVAL_MS: String(options.pollIntervalMs),
    LEASE_TTL_MS: String(Math.max(3000, Math.min(15_000, options.pollIntervalMs))),
    // A SIGKILLed consumer holds its partitions this long: the broker's minimum keeps recovery quick.
    KAFKA_SESSION_TIMEOUT_MS: '6000',
    SINK_TIMEOUT_MS: String(SINK_TIMEOUT_MS),
    // The slowed sink stores a request given up on 500 ms after the client's timeout.
    SINK_LATE_ARRIVAL_MS: '3000',
    // Rebalances take seconds here (6 s sessions): a member that leaves records unfetched for 30 s is
    // stuck, and the drain should not wait two minutes for it to be replaced.
    CONSUMER_STALL_TIMEOUT_MS: '30000',
    SOURCE_TIMEOUT_MS: '10000',
    RETRY_MAX_DELAY_MS: '2000',
    BREAKER_HALF_OPEN_AFTER_MS: '1000',
    DELIVERY_RETRY_DELAY_MS: '1000',
    TOPIC_PARTITIONS: '6',
    METRICS_PORT: '0',
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'json',
  }
}

/** Counters of one run, filled while it goes. */
interface Tally {
  kills: Record<Role, number>
  performed: Record<FaultKind, number>
  sinkOutageMs: number
  sinkDelayed: number
  invalidServed: number
  poison: number
  sourceChanges: number
}

/** Runs the scenario and the checks; never throws for a failed check (see `problems`). */
export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const log = options.log
  const started = Date.now()
  mkdirSync(options.runsDir, { recursive: true })
  const runDir = mkdtempSync(join(options.runsDir, 'run-'))
  log(`run folder ${runDir}`)
  const stack = await startChaosStack({
    dataDir: runDir,
    customers: options.customers,
    products: options.products,
    seed: options.seed,
  })
  const env = serviceEnv(stack, options)
  const config = loadConfig(env)
  const ledger = watchKeys(stack.mock.store)
  const unexpectedExits: UnexpectedExit[] = []
  const onExit = (exit: UnexpectedExit) => {
    unexpectedExits.push(exit)
    log(`${exit.slot} exited unexpectedly (${exit.how}), restarting; last lines:\n${exit.tail}`)
  }
  const logDir = join(runDir, 'logs')
  mkdirSync(logDir, { recursive: true })
  const slots: Record<Role, ServiceSlot[]> = {
    producer: Array.from(
      { length: replicas.producer },
      (_, i) => new ServiceSlot('producer', i + 1, env, logDir, onExit),
    ),
    consumer: Array.from(
      { length: replicas.consumer },
      (_, i) => new ServiceSlot('consumer', i + 1, env, logDir, onExit),
    ),
  }
  const all = [...slots.producer, ...slots.consumer]
  const tally: Tally = {
    kills: { producer: 0, consumer: 0 },
    performed: Object.fromEntries(options.faults.map((kind) => [kind, 0])) as Record<FaultKind, number>,
    sinkOutageMs: 0,
    sinkDelayed: 0,
    invalidServed: 0,
    poison: 0,
    sourceChanges: 0,
  }
  let problems: string[] = []
  let figures: ChaosFigures | undefined
  let mutations: { stop(): Promise<void> } | undefined
  let progress: NodeJS.Timeout | undefined
  try {
    for (const slot of all) slot.start()
    log(`services started; waiting for the first delivery`)
    await until('the first view at the sink', () => stack.mock.store.stats().accepted > 0, 300_000)
    const faultsStarted = Date.now()
    mutations = mutateContinuously(stack, options, tally)
    progress = setInterval(() => {
      const s = stack.mock.store.stats()
      log(`sink: ${s.views} views held, ${s.accepted} accepted, ${s.replays} replays`)
    }, 30_000)
    const steps = buildSchedule(options.seed, options.kills, options.faults)
    const gapMs = options.durationMs / Math.max(1, steps.length)
    for (const [index, step] of steps.entries()) {
      log(`step ${index + 1}/${steps.length}: ${describeStep(step)}`)
      await perform(step, { stack, slots, options, tally, config })
      const nextAt = faultsStarted + (index + 1) * gapMs
      if (Date.now() < nextAt) await sleep(nextAt - Date.now())
    }
    await mutations.stop()
    clearInterval(progress)
    const faultsEnded = Date.now()
    stack.sim.clearFaults()
    stack.mock.store.faults.clear()
    await stack.sink.up()
    log(`faults over after ${((faultsEnded - faultsStarted) / 1000).toFixed(0)} s; draining to quiescence`)
    const quiet = await awaitQuiescence(stack, config, options, all)
    if (!quiet.ok) {
      // What CI prints is all there is of a failed run there: say where it stands and what each
      // service said last.
      const where = await lagging(config).catch((error: unknown) => `unknown (${(error as Error).message})`)
      const said = slots.consumer.map(
        (slot) => `${slot.name} last warned, and last said:\n${lastWords(slot)}`,
      )
      problems.push(
        [`no quiescence within ${options.drainTimeoutMs} ms: ${quiet.why}; lagging: ${where}`, ...said].join(
          '\n',
        ),
      )
    }
    const drained = Date.now()
    log('checking the end state')
    const expected = expectedJoin(stack.sim.snapshot(), config.LOW_STOCK_THRESHOLD)
    const stats = stack.mock.store.stats()
    const dlqMessages = await readTopicFrom(stack.brokers, config.TOPIC_DLQ, { idleMs: 5000 })
    const dlq = tallyDlq(dlqMessages.map((m) => JSON.parse(m.value ?? 'null') as DlqEntry))
    problems = [
      ...problems,
      ...endCheckProblems({
        expected,
        held: await heldViews(stack.mock),
        stats,
        keyConflicts: ledger.conflicts,
        dlq,
        injected: { invalidRecords: tally.invalidServed, poison: tally.poison },
      }),
    ]
    const topicTotals = await endOffsets(config)
    const requests = stack.sim.requests().paths
    const statusCount = (status: string) =>
      Object.values(requests).reduce((sum, p) => sum + (p.statuses[status] ?? 0), 0)
    figures = {
      customers: options.customers,
      products: options.products,
      seed: options.seed,
      kills: tally.kills,
      unexpectedExits: unexpectedExits.length,
      outages: {
        kafkaRestarts: tally.performed['kafka-restart'] ?? 0,
        redisRestarts: tally.performed['redis-restart'] ?? 0,
        sinkOutages: tally.performed['sink-outage'] ?? 0,
        sinkOutageMs: tally.sinkOutageMs,
        sinkDelayed: tally.sinkDelayed,
        source429: statusCount('429'),
        source503: statusCount('503'),
      },
      sourceChanges: tally.sourceChanges,
      sourceMessages:
        (topicTotals.get(config.TOPIC_CUSTOMERS) ?? 0) + (topicTotals.get(config.TOPIC_PRODUCTS) ?? 0),
      refreshMessages: topicTotals.get(config.TOPIC_REFRESH) ?? 0,
      viewsHeld: stats.views,
      deliveries: {
        received: stats.received,
        accepted: stats.accepted,
        replays: stats.replays,
        rejected: stats.rejected,
      },
      dlq: { byCause: dlq.byCause, repeats: dlq.repeats },
      injected: { invalidRecords: tally.invalidServed, poison: tally.poison },
      wallMs: {
        total: Date.now() - started,
        faults: faultsEnded - faultsStarted,
        drain: drained - faultsEnded,
      },
    }
  } finally {
    clearInterval(progress)
    await mutations?.stop()
    await Promise.all(all.map((slot) => slot.close()))
    await stack.stop()
  }
  if (problems.length === 0 && !options.keep) rmSync(runDir, { recursive: true, force: true })
  if (figures === undefined) throw new Error('the chaos run ended without figures')
  return { figures, problems, performed: tally.performed, unexpectedExits, runDir }
}

/** Polls `probe` every 200 ms until it holds. @throws after `timeoutMs`. */
async function until(
  what: string,
  probe: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await Promise.resolve(probe()).catch(() => false)) return
    await sleep(200)
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

/**
 * Changes the simulated sources every tick until stopped: customers changed, created and deleted,
 * a tenth as many products, a product deleted and created every fifth tick.
 */
function mutateContinuously(
  stack: ChaosStack,
  options: ChaosOptions,
  tally: Tally,
): { stop(): Promise<void> } {
  let stopped = false
  const loop = (async () => {
    let tick = 0
    while (!stopped) {
      const n = options.changesPerTick
      const few = Math.max(1, Math.round(n / 10))
      const rare = tick % 5 === 0 ? 1 : 0
      const seed = options.seed * 100_003 + tick
      const c = stack.sim.mutate({
        collection: 'customers',
        changes: n,
        creations: few,
        deletions: few,
        seed,
      })
      const p = stack.sim.mutate({
        collection: 'products',
        changes: few,
        creations: rare,
        deletions: rare,
        seed,
      })
      for (const part of [c.customers, p.products])
        tally.sourceChanges += part.changed.length + part.created.length + part.deleted.length
      tick++
      await sleep(options.tickMs)
    }
  })()
  return {
    async stop() {
      stopped = true
      await loop
    },
  }
}

interface StepContext {
  readonly stack: ChaosStack
  readonly slots: Record<Role, ServiceSlot[]>
  readonly options: ChaosOptions
  readonly tally: Tally
  readonly config: Config
}

/** Carries out one step of the schedule and counts it once it really happened. */
async function perform(step: ChaosStep, ctx: StepContext): Promise<void> {
  const { stack, options, tally } = ctx
  switch (step.kind) {
    case 'kill': {
      // The longest-running replica: it holds work (a lease, partitions) by now.
      const victim = [...ctx.slots[step.role]].sort((a, b) => b.uptimeMs() - a.uptimeMs())[0]
      if (victim === undefined) return
      await waitUptime(victim, 2000)
      const how = await victim.kill('SIGKILL')
      if (how === 'SIGKILL') tally.kills[step.role]++
      await sleep(step.downMs)
      victim.start()
      return
    }
    case 'kafka-restart':
      await stack.restartKafka()
      break
    case 'redis-restart':
      await stack.restartRedis()
      break
    case 'sink-outage': {
      await stack.sink.down()
      const down = Date.now()
      await sleep(options.sinkOutageMs)
      await stack.sink.up()
      tally.sinkOutageMs += Date.now() - down
      break
    }
    case 'sink-slow': {
      // Ten deliveries slower than the consumer's timeout (stored, but the client gives up and sends
      // the same key again), then everything slowed for the window.
      const faults = stack.mock.store.faults
      const overtime = faults.add({ delayMs: SINK_TIMEOUT_MS + 500, count: 10 })
      faults.add({ delayMs: 250 })
      await sleep(options.faultWindowMs)
      const left = faults.list().find((rule) => rule.id === overtime.id)?.remaining ?? 0
      tally.sinkDelayed += 10 - left
      faults.clear()
      break
    }
    case 'source-429':
    case 'source-503': {
      const status = step.kind === 'source-429' ? 429 : 503
      stack.sim.addFaults([{ status, retryAfter: 1 }])
      await sleep(options.faultWindowMs)
      stack.sim.clearFaults()
      break
    }
    case 'invalid-records':
      await injectInvalidRecords(ctx)
      break
    case 'poison':
      await producePoison(ctx)
      break
  }
  tally.performed[step.kind] = (tally.performed[step.kind] ?? 0) + 1
}

/**
 * Mixes bad records into one response of each source and waits until the producer dead-lettered
 * them (the DLQ topic grew by that many), so the next kill cannot cut that cycle short.
 */
async function injectInvalidRecords(ctx: StepContext): Promise<void> {
  const { stack, options, tally, config } = ctx
  const before = await dlqEnd(config)
  const rules = stack.sim.addFaults(
    (['/customers', '/products'] as const).map((path) => ({
      path,
      count: 1,
      invalidRecords: options.invalidRecords,
    })),
  )
  const ids = new Set(rules.map((rule) => rule.id))
  await until('the bad records to be served', () => !stack.sim.faults().some((f) => ids.has(f.id)), 120_000)
  tally.invalidServed += rules.length * options.invalidRecords
  await until(
    'the bad records to reach the DLQ',
    async () => (await dlqEnd(config)) >= before + rules.length * options.invalidRecords,
    120_000,
  ).catch((error: unknown) => options.log(`warning: ${(error as Error).message}`))
}

/** Produces messages no consumer can read to the customer topic: each must become one DLQ entry. */
async function producePoison(ctx: StepContext): Promise<void> {
  const { config, options, tally } = ctx
  const producer = createProducer(config, 'chaos-poison')
  const values = [
    'not-json{',
    '{}',
    JSON.stringify({ schemaVersion: 1, entity: 'customer', data: { id: 5 } }),
  ]
  try {
    const messages = Array.from({ length: options.invalidRecords }, (_, i) => ({
      topic: config.TOPIC_CUSTOMERS,
      key: `${POISON_KEY_PREFIX}${tally.poison + i}`,
      value: values[i % values.length] ?? '',
    }))
    await publish(producer, messages)
    tally.poison += messages.length
  } finally {
    await producer.close()
  }
}

/** The DLQ topic's end offset (entries ever written). */
async function dlqEnd(config: Config): Promise<number> {
  return (await endOffsets(config, [config.TOPIC_DLQ])).get(config.TOPIC_DLQ) ?? 0
}

/** Messages ever written per topic (sum of partition end offsets). */
async function endOffsets(
  config: Config,
  topics = [config.TOPIC_CUSTOMERS, config.TOPIC_PRODUCTS, config.TOPIC_REFRESH],
): Promise<Map<string, number>> {
  const admin = createAdmin(config, 'chaos-admin')
  try {
    const metadata = await admin.metadata({ topics })
    const counts = new Map(topics.map((t) => [t, metadata.topics.get(t)?.partitionsCount ?? 0] as const))
    const ends = await offsetsAt(admin, counts, ListOffsetTimestamps.LATEST)
    const totals = new Map<string, number>()
    for (const [key, offset] of ends) {
      const topic = key.slice(0, key.lastIndexOf(':'))
      totals.set(topic, (totals.get(topic) ?? 0) + Number(offset))
    }
    return totals
  } finally {
    await admin.close().catch(() => undefined)
  }
}

/**
 * Waits for quiescence: for one whole window (three poll intervals, at least 10 s) the sink received
 * nothing, every producer had time for a full scan of the unchanged sources (the simulator served at
 * least two listings' worth of requests per source), and at the end both consumer groups have no
 * lag and no view waits for an off-path retry.
 */
async function awaitQuiescence(
  stack: ChaosStack,
  config: Config,
  options: ChaosOptions,
  slots: readonly ServiceSlot[],
): Promise<{ ok: true } | { ok: false; why: string }> {
  const deadline = Date.now() + options.drainTimeoutMs
  const windowMs = Math.max(10_000, 3 * options.pollIntervalMs)
  const redis = await connectRedis(config.REDIS_URL, createLogger({ service: 'chaos', level: 'silent' }))
  let why = 'not checked'
  try {
    while (Date.now() < deadline) {
      const received = stack.mock.store.stats().received
      const requests = requestCounts(stack)
      await sleep(windowMs)
      const state = stack.sim.state()
      const pages = {
        '/customers': Math.ceil(state.customers.count / 1000),
        '/products': Math.ceil(state.products.count / 1000),
      }
      const after = requestCounts(stack)
      const scanned = Object.entries(pages).every(
        ([path, n]) => (after[path] ?? 0) - (requests[path] ?? 0) >= 2 * Math.max(1, n) + 1,
      )
      const lag = await totalLag(config).catch(
        (error: unknown) => `lag unknown (${(error as Error).message})`,
      )
      const retries =
        (await redis.zCard(`${REDIS_PREFIX}:consumer:retry:due`)) +
        (await redis.hLen(`${REDIS_PREFIX}:consumer:retry:failures`))
      const quietSink = stack.mock.store.stats().received === received
      const running = slots.every((slot) => slot.uptimeMs() > 0)
      why = `sink quiet ${quietSink}, full scans ${scanned}, lag ${lag}, retries pending ${retries}, all running ${running}`
      options.log(`quiescence check: ${why}`)
      if (quietSink && scanned && lag === 0 && retries === 0 && running) return { ok: true }
    }
    return { ok: false, why }
  } finally {
    await redis.close().catch(() => undefined)
  }
}

function requestCounts(stack: ChaosStack): Record<string, number> {
  const paths = stack.sim.requests().paths
  return Object.fromEntries(Object.entries(paths).map(([path, stats]) => [path, stats.count]))
}

/** A service's last warnings or errors and its last line, each cut to a length a report can carry. */
function lastWords(slot: ServiceSlot): string {
  const lines = slot.tail(2000).split('\n')
  const warned = lines.filter((line) => /"level":[4-6]0/.test(line)).slice(-6)
  return [...warned, '…', lines.at(-1) ?? '']
    .map((line) => (line.length > 300 ? `${line.slice(0, 300)}…` : line))
    .join('\n')
}

/** Records both consumer groups still have to read. */
async function totalLag(config: Config): Promise<number> {
  let total = 0
  for (const { lag } of await groupLags(config)) total += lag
  return total
}

/** The partitions with lag, as `group topic-partition committed/end`, for a failure's report. */
async function lagging(config: Config): Promise<string> {
  const rows = (await groupLags(config))
    .filter(({ lag }) => lag > 0)
    .map((p) => `${p.group} ${p.topic}-${p.partition} ${p.committedOffset ?? 'none'}/${p.logEndOffset}`)
  return rows.length === 0 ? 'none' : rows.join(', ')
}

/** The lag of every partition both consumer groups read. */
async function groupLags(config: Config): Promise<Array<PartitionLag & { readonly group: string }>> {
  const admin = createAdmin(config, 'chaos-lag')
  try {
    const groups = [
      { id: `${config.CONSUMER_GROUP}.state`, topics: [config.TOPIC_CUSTOMERS, config.TOPIC_PRODUCTS] },
      { id: `${config.CONSUMER_GROUP}.deliver`, topics: [config.TOPIC_REFRESH] },
    ]
    const rows: Array<PartitionLag & { readonly group: string }> = []
    for (const group of groups) {
      for (const partition of await consumerLag(admin, group.id, group.topics))
        rows.push({ ...partition, group: group.id })
    }
    return rows
  } finally {
    await admin.close().catch(() => undefined)
  }
}
