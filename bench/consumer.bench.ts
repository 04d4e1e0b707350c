/**
 * Throughput of the consumer: `node_modules/.bin/node bench/consumer.bench.ts`.
 *
 * Per delivery mode (`--batch-sizes 1,200`: `SINK_BATCH_SIZE` of each run; 1 is per-record POSTs):
 *  - A, initial load: 100k customers (1–5 productIds each, from 10k products) and the 10k products are
 *    produced onto fresh topics first; then the consumer starts, and the clock runs until the analytics
 *    mock holds all 110k views, and until their last delivery once nothing arrives any more (views
 *    whose products came after them are delivered twice). Figures: views/s against the 20k/s target,
 *    the consumer's peak RSS against 200 MB;
 *  - B, fan-out: 50k of those customers list product 0; a new version of it is produced, and the
 *    clock runs until the mock received the last of the 50k customer views (its `receivedAt`),
 *    against the 5 s target.
 * The consumer (`pipeline consumer`) and the mock (`pipeline mock-analytics`) run as child processes
 * of their own, as deployed: their RSS and CPU time are read from /proc. Kafka and Redis are started
 * on free ports under .cache/bench-runs/ unless KAFKA_BROKERS and REDIS_URL point at running ones.
 * Figures are printed, not asserted. Options: `--customers N`, `--products N`, `--fanout N`,
 * `--batch-sizes LIST`, `--consumers N` (consumer processes sharing the work, default 1; RSS is then
 * the highest of them), `--consumer-node-options OPTS` (NODE_OPTIONS of the consumers, e.g. V8 heap
 * flags), `--profile DIR` (`--cpu-prof` of the consumers into DIR, one file per process), `--sources`
 * (run the consumer from the TypeScript sources, as `npm start` does, instead of the compiled build that
 * the Docker image runs; the build is compiled first, as `npm run build` does).
 * `--memory-limit-mb N` runs the consumers in a memory cgroup of N MB, as a container with that limit
 * would (root only; see bench/cgroup.ts): Node then sizes its heap by it, and the kernel enforces it.
 * `BENCH_KEEP_LOGS=1` keeps the children's logs (they are kept anyway when a run fails).
 */
import { mkdirSync } from 'node:fs'
import { availableParallelism, loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { loadConfig } from '../src/config/env.ts'
import { upsertMessage } from '../src/domain/envelope.ts'
import type { Customer, Product } from '../src/domain/records.ts'
import { type ManagedChild, spawnChild } from '../src/infra/child.ts'
import { projectRoot } from '../src/infra/paths.ts'
import { freePort } from '../src/infra/ports.ts'
import type { LocalInfra } from '../src/infra/stack.ts'
import { createAdmin } from '../src/kafka/admin.ts'
import type { OutgoingMessage } from '../src/kafka/ports.ts'
import { createProducer, publish } from '../src/kafka/producer.ts'
import { ensureTopics, pipelineTopicSpecs } from '../src/kafka/topics.ts'
import { createLogger } from '../src/observability/logger.ts'
import { connectRedis } from '../src/state/redis.ts'
import { compileBuild, compiledCli } from './build.ts'
import { createMemoryCgroup, type MemoryCgroup } from './cgroup.ts'
import { withBenchInfra } from './infra.ts'
import {
  busyShare,
  cpuCeiling,
  infraCpuSeconds,
  infraPids,
  machineTicks,
  processCpuSeconds,
  processMemoryBytes,
} from './proc.ts'

/** Targets of the consumer issue, on the 2-core machine it names. */
const VIEWS_TARGET_PER_SECOND = 20_000
const RSS_TARGET_BYTES = 200 * 1000 * 1000
const FANOUT_TARGET_SECONDS = 5

/** The product that `--fanout` customers list (scenario B changes it). */
const FANOUT_PRODUCT = '0'

/** No new delivery for this long: the pipeline is quiet. */
const QUIET_MS = 2000

const cli = join(projectRoot, 'src', 'cli.ts')

/** Deterministic pseudo-random numbers (mulberry32), so every run produces the same data. */
function random(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function product(id: string, price: number): Product {
  return {
    id,
    sku: `SKU-${id}`,
    name: `Product ${id}`,
    price,
    stock: Number(id) % 50,
    updatedAt: '2026-02-04T18:30:00Z',
  }
}

/**
 * The data set: customers 0…fanout−1 list the fan-out product and 0–4 others, the rest 1–5 others
 * (never the fan-out product), drawn from the products 1…products−1.
 */
function dataSet(customers: number, products: number, fanout: number): { c: Customer[]; p: Product[] } {
  const next = random(42)
  const p = Array.from({ length: products }, (_, j) => product(String(j), 1 + (j % 100)))
  const c = Array.from({ length: customers }, (_, i): Customer => {
    const ids = new Set<string>(i < fanout ? [FANOUT_PRODUCT] : [])
    const count = 1 + Math.floor(next() * 5)
    while (ids.size < count) ids.add(String(1 + Math.floor(next() * (products - 1))))
    return {
      id: String(i),
      name: `Customer ${i}`,
      email: `c${i}@example.com`,
      status: 'active',
      productIds: [...ids],
      updatedAt: '2026-02-04T18:30:00Z',
    }
  })
  return { c, p }
}

interface Stats {
  readonly received: number
  readonly accepted: number
  readonly replays: number
  readonly rejected: number
  readonly views: number
  readonly batches?: number
}

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url)
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status} ${await response.text()}`)
  return (await response.json()) as T
}

/** Polls `probe` every 50 ms until it returns a value; throws naming `what` after `timeoutMs`. */
async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  alive: () => void,
): Promise<T> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    alive()
    const value = await probe().catch(() => undefined)
    if (value !== undefined) return value
    if (performance.now() > deadline)
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`)
    await sleep(50)
  }
}

/** The RSS of a process sampled every 100 ms, for the peak beside the kernel's high-water mark. */
function sampleRss(pid: number): { peak: () => number; stop: () => void } {
  let peak = 0
  const timer = setInterval(() => {
    void processMemoryBytes(pid, 'VmRSS').then((rss) => {
      if (rss > peak) peak = rss
    })
  }, 100)
  return { peak: () => peak, stop: () => clearInterval(timer) }
}

/** What one run (one delivery mode) measured. */
interface RunResult {
  readonly batchSize: number
  readonly views: number
  readonly produceSeconds: number
  readonly readySeconds: number
  /** RSS of a consumer when it joined its groups, before any work. */
  readonly readyRss: number
  /** From the consumer's start until the mock held every view. */
  readonly heldSeconds: number
  /** From the consumer's start until the last delivery of the initial load. */
  readonly settledSeconds: number
  readonly acceptedA: number
  readonly peakRssA: number
  readonly consumerCpuA: number
  readonly mockCpuA: number
  /** CPU seconds of the Kafka broker and Redis during A, when this bench launched them. */
  readonly infraCpuA: ReadonlyMap<string, number>
  readonly machineBusyA: number
  readonly fanoutViews: number
  readonly fanoutSeconds: number
  /** CPU seconds of the consumers from the end of A to the end of B. */
  readonly consumerCpuB: number
  readonly acceptedB: number
  readonly peakRss: number
  readonly replays: number
  readonly rejected: number
  readonly batchRequests: number | undefined
  /** The consumer's own figures at the end of A. */
  readonly figuresA: ConsumerFigures
  /** With `--memory-limit-mb`: the limit, the most memory charged to the consumers' group, OOM kills. */
  readonly cgroup: { limitBytes: number; peakBytes: number; oomKills: number } | undefined
}

interface Options {
  readonly customers: number
  readonly products: number
  readonly fanout: number
  readonly profileDir: string | undefined
  readonly runDir: string
  /** NODE_OPTIONS of the consumer process (V8 heap flags, say). */
  readonly nodeOptions: string | undefined
  /** Consumer processes sharing the work (one group). */
  readonly consumers: number
  /** The consumer's entry point: the compiled CLI or the TypeScript one. */
  readonly consumerCli: string
  /** Runs the consumers in a memory cgroup of this many bytes (`--memory-limit-mb`). */
  readonly memoryLimitBytes: number | undefined
}

const out = (line: string): void => void process.stdout.write(`${line}\n`)
const err = (line: string): void => void process.stderr.write(`${line}\n`)
const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(0)} MB`

async function runMode(infra: LocalInfra, options: Options, batchSize: number): Promise<RunResult> {
  const suffix = `${Date.now().toString(36)}-b${batchSize}`
  const topics = {
    TOPIC_CUSTOMERS: `bench-customers-${suffix}`,
    TOPIC_PRODUCTS: `bench-products-${suffix}`,
    TOPIC_DLQ: `bench-dlq-${suffix}`,
    TOPIC_REFRESH: `bench-refresh-${suffix}`,
  }
  const config = loadConfig({
    KAFKA_BROKERS: infra.kafkaBrokers.join(','),
    REDIS_URL: infra.redisUrl,
    ...topics,
  })
  const stops: Array<() => Promise<unknown>> = []
  try {
    // The source topics, created and filled before the consumer starts.
    const admin = createAdmin(config, 'bench-admin')
    await ensureTopics(admin, pipelineTopicSpecs(config)).finally(() => admin.close())
    const { c, p } = dataSet(options.customers, options.products, options.fanout)
    const polledAt = new Date().toISOString()
    const crm = { name: 'crm', entity: 'customer' as const, topic: config.TOPIC_CUSTOMERS }
    const inventory = { name: 'inventory', entity: 'product' as const, topic: config.TOPIC_PRODUCTS }
    const messages: OutgoingMessage[] = [
      ...p.map((record) => upsertMessage(inventory, record, polledAt)),
      ...c.map((record) => upsertMessage(crm, record, polledAt)),
    ]
    const producer = createProducer(config, 'bench')
    stops.push(() => producer.close())
    const produceStarted = performance.now()
    // Four publishes in flight: ids are independent, and one in-order stream of sends is the slow part.
    const slices = 4
    const size = Math.ceil(messages.length / slices)
    await Promise.all(
      Array.from({ length: slices }, (_, i) => publish(producer, messages.slice(i * size, (i + 1) * size))),
    )
    const produceSeconds = (performance.now() - produceStarted) / 1000
    const views = c.length + p.length

    // The mock, in a process of its own.
    const mockPort = await freePort()
    const mock = spawnChild({
      name: 'mock-analytics',
      command: process.execPath,
      args: [cli, 'mock-analytics'],
      cwd: projectRoot,
      logFile: join(options.runDir, `mock-analytics-${suffix}.log`),
      env: { ...process.env, MOCK_ANALYTICS_PORT: String(mockPort), LOG_LEVEL: 'warn' },
    })
    stops.push(() => mock.stop())
    const mockUrl = `http://127.0.0.1:${mockPort}`
    const alive = (child: ManagedChild) => () => {
      const error = child.exitError()
      if (error) throw error
    }
    await until('the mock', () => getJson<Stats>(`${mockUrl}/analytics/stats`), 30_000, alive(mock))
    const stats = () => getJson<Stats>(`${mockUrl}/analytics/stats`)

    // The consumers, each in a process of its own, one group; the clock starts as they are spawned.
    const metricsPorts = await Promise.all(Array.from({ length: options.consumers }, () => freePort()))
    const profile = options.profileDir ? ['--cpu-prof', '--cpu-prof-dir', options.profileDir] : []
    let cgroup: MemoryCgroup | undefined
    if (options.memoryLimitBytes !== undefined) {
      const group = await createMemoryCgroup(`pipeline-bench-${suffix}`, options.memoryLimitBytes)
      cgroup = group
      // Pushed before the consumers' stops, so it runs after them (stops run in reverse).
      stops.push(() => group.remove())
    }
    const launch = (args: string[]) =>
      cgroup === undefined ? { command: process.execPath, args } : cgroup.wrap(process.execPath, args)
    const infraProcesses = await infraPids(options.runDir, config.REDIS_URL)
    const infraBefore = await infraCpuSeconds(infraProcesses)
    const machineBefore = await machineTicks()
    const started = performance.now()
    const startedAt = Date.now()
    const consumers = metricsPorts.map((metricsPort, i) =>
      spawnChild({
        name: `consumer ${i + 1}`,
        ...launch([...profile, options.consumerCli, 'consumer']),
        cwd: projectRoot,
        logFile: join(options.runDir, `consumer-${suffix}-${i + 1}.log`),
        env: {
          ...process.env,
          KAFKA_BROKERS: config.KAFKA_BROKERS.join(','),
          REDIS_URL: config.REDIS_URL,
          // Each run its own state, even in a Redis the bench did not start.
          PIPELINE_REDIS_PREFIX: `bench-${suffix}`,
          ANALYTICS_URL: `${mockUrl}/analytics/data`,
          ...topics,
          CONSUMER_GROUP: `bench-group-${suffix}`,
          METRICS_PORT: String(metricsPort),
          LOG_LEVEL: 'warn',
          SINK_BATCH_SIZE: String(batchSize),
          ...(options.nodeOptions === undefined ? {} : { NODE_OPTIONS: options.nodeOptions }),
        },
      }),
    )
    for (const consumer of consumers) stops.push(() => consumer.stop(30_000))
    const consumerAlive = () => {
      for (const consumer of consumers) alive(consumer)()
    }
    const samplers = consumers.map((consumer) => sampleRss(consumer.pid))
    stops.push(async () => {
      for (const sampler of samplers) sampler.stop()
    })
    /** The highest peak RSS of any consumer process. */
    const peakRssNow = async () => {
      const peaks = await Promise.all(
        consumers.map(async (consumer, i) =>
          Math.max(samplers[i]?.peak() ?? 0, await processMemoryBytes(consumer.pid, 'VmHWM')),
        ),
      )
      return Math.max(...peaks)
    }
    const metricsUrls = metricsPorts.map((port) => `http://127.0.0.1:${port}`)
    const since = (t: number) => (t - started) / 1000

    await until(
      'the consumers to join their groups',
      async () => {
        const answers = await Promise.all(metricsUrls.map((url) => fetch(`${url}/readyz`)))
        return answers.every((answer) => answer.ok) ? true : undefined
      },
      60_000,
      consumerAlive,
    )
    const readySeconds = since(performance.now())
    // What a consumer holds before any work: the floor under the peak.
    const readyRss = Math.max(
      ...(await Promise.all(consumers.map((consumer) => processMemoryBytes(consumer.pid, 'VmRSS')))),
    )
    err(`[b=${batchSize}] consumer ready after ${readySeconds.toFixed(1)} s; loading ${views} views`)
    let lastLog = performance.now()
    await until(
      `all ${views} views at the mock`,
      async () => {
        const s = await stats()
        if (performance.now() - lastLog > 5000) {
          lastLog = performance.now()
          err(
            `[b=${batchSize}]   ${since(lastLog).toFixed(0)} s: ${s.views} views held, ${s.accepted} accepted`,
          )
        }
        return s.views >= views ? s : undefined
      },
      600_000,
      consumerAlive,
    )
    const heldSeconds = since(performance.now())
    const settled = await quiet(stats, consumerAlive)
    const lastA = await lastRecord(mockUrl, settled.accepted)
    const settledSeconds = (lastA.receivedAt - startedAt) / 1000
    const machineA = await machineTicks()
    const peakRssA = await peakRssNow()
    const consumersCpu = async () =>
      (await Promise.all(consumers.map((consumer) => processCpuSeconds(consumer.pid)))).reduce(
        (sum, cpu) => sum + cpu,
        0,
      )
    const consumerCpuA = await consumersCpu()
    const mockCpuA = await processCpuSeconds(mock.pid)
    const infraCpuA = new Map(
      [...(await infraCpuSeconds(infraProcesses))].map(([part, cpu]) => [
        part,
        cpu - (infraBefore.get(part) ?? 0),
      ]),
    )
    const figuresA = await consumerFigures(metricsUrls.map((url) => `${url}/metrics`))

    // B: the fan-out product changes.
    err(`[b=${batchSize}] initial load settled; changing product ${FANOUT_PRODUCT}`)
    const changedAt = Date.now()
    await publish(producer, [
      upsertMessage(inventory, product(FANOUT_PRODUCT, 12_345), new Date(changedAt).toISOString()),
    ])
    const expected = options.fanout + 1
    await until(
      `${expected} re-delivered views`,
      async () => ((await stats()).accepted >= settled.accepted + expected ? true : undefined),
      300_000,
      consumerAlive,
    )
    const afterB = await quiet(stats, consumerAlive)
    // The last of the fan-out's deliveries (any later one would be something else: there is none).
    const lastB = await lastRecord(mockUrl, afterB.accepted)
    const fanoutSeconds = (lastB.receivedAt - changedAt) / 1000
    // From A's end to B's (its quiet tail included: the consumer is idle then).
    const consumerCpuB = (await consumersCpu()) - consumerCpuA
    const peakRss = await peakRssNow()
    return {
      batchSize,
      views,
      produceSeconds,
      readySeconds,
      readyRss,
      heldSeconds,
      settledSeconds,
      acceptedA: settled.accepted,
      peakRssA,
      consumerCpuA,
      mockCpuA,
      infraCpuA,
      machineBusyA: busyShare(machineBefore, machineA),
      fanoutViews: afterB.accepted - settled.accepted,
      fanoutSeconds,
      consumerCpuB,
      acceptedB: afterB.accepted,
      peakRss,
      replays: afterB.replays,
      rejected: afterB.rejected,
      batchRequests: afterB.batches,
      figuresA,
      cgroup:
        cgroup === undefined
          ? undefined
          : {
              limitBytes: cgroup.limitBytes,
              peakBytes: await cgroup.peakBytes(),
              oomKills: await cgroup.oomKills(),
            },
    }
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined)
  }
}

/** Waits until the mock accepted nothing new for {@link QUIET_MS}; returns its counters then. */
async function quiet(stats: () => Promise<Stats>, alive: () => void): Promise<Stats> {
  let last = await stats()
  let since = performance.now()
  for (;;) {
    alive()
    await sleep(200)
    const now = await stats()
    if (now.accepted !== last.accepted) {
      last = now
      since = performance.now()
    } else if (performance.now() - since >= QUIET_MS) return now
  }
}

/** The `count`-th accepted record (1-based): its arrival time at the mock. */
async function lastRecord(mockUrl: string, count: number): Promise<{ key: string; receivedAt: number }> {
  const page = await getJson<{ records: Array<{ key: string; receivedAt: number }> }>(
    `${mockUrl}/analytics/records?offset=${count - 1}&limit=1`,
  )
  const record = page.records[0]
  if (record === undefined) throw new Error(`the mock has no record #${count}`)
  return record
}

/** What the consumer's metrics say of a run: per stage its batches, and where the views went. */
interface ConsumerFigures {
  /** Per stage: batches handled and seconds spent in them. */
  readonly batches: ReadonlyMap<string, { count: number; seconds: number }>
  /** Refresh requests stage 1 published. */
  readonly refreshes: number
  /** View evaluations of stage 2 by result (delivered, unchanged, …). */
  readonly views: ReadonlyMap<string, number>
}

/** Reads {@link ConsumerFigures} from the consumers' Prometheus texts, summed. */
async function consumerFigures(urls: readonly string[]): Promise<ConsumerFigures> {
  const text = (await Promise.all(urls.map(async (url) => (await fetch(url)).text()))).join('\n')
  const batches = new Map<string, { count: number; seconds: number }>()
  const views = new Map<string, number>()
  let refreshes = 0
  for (const line of text.split('\n')) {
    const match = /^(\w+)\{(.*)\} (\S+)$/.exec(line)
    if (match === null) continue
    const [, name, labels = '', raw] = match
    const label = (key: string) => new RegExp(`${key}="(\\w+)"`).exec(labels)?.[1] ?? ''
    const value = Number(raw)
    if (name === 'pipeline_view_refreshes_total') refreshes += value
    else if (name === 'pipeline_views_total')
      views.set(label('result'), (views.get(label('result')) ?? 0) + value)
    else if (name?.startsWith('pipeline_consumer_batch_duration_seconds_')) {
      const stage = label('stage')
      const known = batches.get(stage) ?? { count: 0, seconds: 0 }
      if (name.endsWith('_count')) batches.set(stage, { ...known, count: known.count + value })
      else if (name.endsWith('_sum')) batches.set(stage, { ...known, seconds: known.seconds + value })
    }
  }
  return { batches, refreshes, views }
}

function report(results: readonly RunResult[]): void {
  const x = (ratio: number) => `x${ratio.toFixed(2)}`
  out('')
  out(
    '| mode | A: all views held (s) | A: last delivery (s) | A: views/s (vs 20k/s) | A: views POSTed | ' +
      'peak RSS of a consumer (vs 200 MB) | B: fan-out re-delivered (s, vs 5 s) | requests to the mock |',
  )
  out('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const r of results) {
    const mode = r.batchSize === 1 ? 'per-record POSTs' : `batches of ${r.batchSize}`
    const perSecond = r.views / r.settledSeconds
    const requests =
      r.batchSize === 1 ? `${r.acceptedB + r.replays + r.rejected}` : `${r.batchRequests ?? '?'} batches`
    out(
      `| ${mode} | ${r.heldSeconds.toFixed(1)} | ${r.settledSeconds.toFixed(1)} | ` +
        `${Math.round(perSecond)} (${x(perSecond / VIEWS_TARGET_PER_SECOND)}) | ${r.acceptedA} for ${r.views} | ` +
        `${mb(r.peakRss)} (${x(r.peakRss / RSS_TARGET_BYTES)}; ${mb(r.peakRssA)} in A) | ` +
        `${r.fanoutViews} in ${r.fanoutSeconds.toFixed(2)} (${x(r.fanoutSeconds / FANOUT_TARGET_SECONDS)}) | ${requests} |`,
    )
  }
  out('')
  for (const r of results) {
    const mode = r.batchSize === 1 ? 'per-record' : `batch ${r.batchSize}`
    out(
      `${mode}: sources produced in ${r.produceSeconds.toFixed(1)} s; consumer ready after ${r.readySeconds.toFixed(1)} s ` +
        `with ${mb(r.readyRss)} RSS; ` +
        `during A the consumer used ${r.consumerCpuA.toFixed(1)} CPU s ` +
        `(${Math.round((100 * r.consumerCpuA) / r.settledSeconds)}% of a core), the mock ${r.mockCpuA.toFixed(1)} CPU s, ` +
        [...r.infraCpuA].map(([part, cpu]) => `${part} ${cpu.toFixed(1)} CPU s, `).join('') +
        `all ${availableParallelism()} cores ${Math.round(100 * r.machineBusyA)}% busy; ` +
        `mock replays ${r.replays}, rejected ${r.rejected}`,
    )
    if (r.cgroup !== undefined)
      out(
        `  the consumers ran in a memory cgroup of ${mb(r.cgroup.limitBytes)} (Node sizes its heap by it): ` +
          `at most ${mb(r.cgroup.peakBytes)} charged to it (anonymous memory and the page cache it touched; ` +
          `the RSS above also counts the node binary's pages, which other processes loaded), ${r.cgroup.oomKills} OOM kills`,
      )
    const { batches, refreshes, views } = r.figuresA
    const evaluated = [...views].map(([result, n]) => `${n} ${result}`).join(', ')
    const stages = [...batches].map(
      ([stage, b]) =>
        `${stage} ${b.count} batches, ${b.seconds.toFixed(1)} s in them (${(b.count > 0 ? (1000 * b.seconds) / b.count : 0).toFixed(0)} ms each)`,
    )
    out(`  A: ${refreshes} refresh requests published; views evaluated: ${evaluated}; ${stages.join(', ')}`)
    out(`  A: ${cpuCeiling(r.views / r.settledSeconds, r.machineBusyA, 'views/s', VIEWS_TARGET_PER_SECOND)}`)
    out(
      `  B: the consumer used ${r.consumerCpuB.toFixed(2)} CPU s ` +
        `(${r.fanoutViews > 0 ? Math.round((1e6 * r.consumerCpuB) / r.fanoutViews) : 0} µs per re-delivered view)`,
    )
  }
  out(
    'Seconds count from the consumer process being spawned; views/s = views / seconds to the last delivery ' +
      'of the initial load (its views POSTed include the versions of views that changed while loading).',
  )
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      customers: { type: 'string', default: '100000' },
      products: { type: 'string', default: '10000' },
      fanout: { type: 'string', default: '50000' },
      'batch-sizes': { type: 'string', default: '1,200' },
      profile: { type: 'string' },
      'consumer-node-options': { type: 'string' },
      consumers: { type: 'string', default: '1' },
      sources: { type: 'boolean', default: false },
      'memory-limit-mb': { type: 'string' },
    },
  })
  const customers = Number(values.customers)
  const fanout = Math.min(Number(values.fanout), customers)
  const batchSizes = values['batch-sizes'].split(',').map(Number)
  const profileDir = values.profile === undefined ? undefined : resolve(values.profile)
  if (profileDir) mkdirSync(profileDir, { recursive: true })
  const [load1] = loadavg()
  out(
    `consumer benchmark: ${customers} customers (1–5 productIds, ${fanout} list product ${FANOUT_PRODUCT}) + ` +
      `${values.products} products; SINK_BATCH_SIZE ${batchSizes.join(', ')}; ${values.consumers} consumer process(es); ` +
      `load average ${load1?.toFixed(2)} ` +
      `on ${availableParallelism()} cores at the start; the consumer runs ` +
      (values.sources
        ? 'the TypeScript sources (type stripping, as `npm start`)'
        : 'the compiled build (dist/, as the Docker image)') +
      (values['consumer-node-options'] ? ` with NODE_OPTIONS=${values['consumer-node-options']}` : '') +
      (values['memory-limit-mb'] ? `, in a memory cgroup of ${values['memory-limit-mb']} MB` : ''),
  )
  if (!values.sources) compileBuild()
  await withBenchInfra('consumer', async (infra, runDir) => {
    const ownRedis = !process.env.REDIS_URL
    const results: RunResult[] = []
    for (const batchSize of batchSizes) {
      if (ownRedis) {
        // A fresh Redis per run: the earlier run's state would only cost memory and time here.
        const redis = await connectRedis(
          infra.redisUrl,
          createLogger({ service: 'bench', level: 'warn', pretty: false }),
        )
        await redis.flushAll()
        await redis.close()
      }
      results.push(
        await runMode(
          infra,
          {
            customers,
            products: Number(values.products),
            fanout,
            profileDir,
            runDir,
            nodeOptions: values['consumer-node-options'],
            consumers: Number(values.consumers),
            consumerCli: values.sources ? cli : compiledCli,
            memoryLimitBytes:
              values['memory-limit-mb'] === undefined ? undefined : Number(values['memory-limit-mb']) * 1e6,
          },
          batchSize,
        ),
      )
    }
    report(results)
    out(
      `load average at the end: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    )
  })
}

await main()
