/**
 * Throughput of the producer: `node_modules/.bin/node bench/producer.bench.ts`.
 *
 * A source simulator in its own process serves 100k customers and 10k products in pages of 1000;
 * the real producer runtime (Redis state, idempotent Kafka producer, acks=all) runs one cycle per
 * source, both at once as the service does. Printed, not asserted:
 *  - the first full sync, until Kafka acknowledged everything: records/s against the 50k/s target,
 *    on the freshly started broker, and again at the end on new topics and state once the broker's
 *    JVM is warm (as a running cluster's is; the local broker compiles with C1 only, see bench/README.md);
 *  - an unchanged re-poll of the same data: seconds against the 2 s target, messages published (0);
 *  - the same re-poll with `array` listings, whose ETag makes the second poll a 304;
 *  - the producer process's CPU time and RSS.
 * Kafka and Redis are started on free ports under .cache/bench-runs/ unless KAFKA_BROKERS and
 * REDIS_URL point at running ones. Options: `--customers N`, `--products N`, `--page-size N`,
 * `--scan-threads N` (`SOURCE_SCAN_THREADS`; 0 scans on the main thread), and
 * `--profile DIR` to write one CPU profile per phase of this process (`producer-first-sync.cpuprofile`,
 * …) to DIR, for Chrome DevTools, without the infrastructure's start-up in them.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { availableParallelism, loadavg } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { type Config, loadConfig } from '../src/config/env.ts'
import { cacheDir } from '../src/infra/paths.ts'
import { type LocalInfra, startLocalInfra } from '../src/infra/stack.ts'
import { createLogger } from '../src/observability/logger.ts'
import { type CycleSummary, runCycle } from '../src/services/producer/cycle.ts'
import { createProducerRuntime, type ProducerRuntime } from '../src/services/producer/service.ts'
import { busyShare, cpuCeiling, infraCpuSeconds, infraPids, machineTicks, processCpuSeconds } from './proc.ts'

/** Targets of the producer issue, on the 2-core machine it names. */
const FIRST_SYNC_TARGET_PER_SECOND = 50_000
const REPOLL_TARGET_SECONDS = 2

const simulatorMain = fileURLToPath(new URL('../src/simulator/main.ts', import.meta.url))

/** The simulator as a child process, so serving 110k records does not share the producer's event loop. */
async function startSimulatorProcess(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  // process.execPath is the pinned node this bench was started with (node_modules/.bin/node).
  const child = spawn(process.execPath, [simulatorMain, '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`the simulator exited with code ${code} before it listened`)
  })
  const [url] = (await Promise.race([once(lines, 'line'), exited])) as [string]
  lines.close()
  return { child, url: url.trim() }
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  await exited
}

/** Switches both collections of the simulator to another paging style (a new ETag epoch). */
async function setPaging(url: string, style: string): Promise<void> {
  const response = await fetch(`${url}/control/settings`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ paging: { customers: style, products: style } }),
  })
  if (!response.ok) throw new Error(`simulator settings: HTTP ${response.status} ${await response.text()}`)
}

/** CPU time of this process in seconds since `since` (or `used`, a difference already taken). */
function cpuSeconds(since: NodeJS.CpuUsage, used = process.cpuUsage(since)): number {
  return (used.user + used.system) / 1e6
}

interface Phase {
  readonly summaries: CycleSummary[]
  readonly seconds: number
  /** CPU seconds of the whole producer process (main thread, scan workers, GC and libuv threads). */
  readonly cpu: number
  /** CPU seconds of the producer's main thread alone: what bounds a sync. */
  readonly mainCpu: number
  readonly simulatorCpu: number
  /** CPU seconds of the Kafka broker and Redis, when this bench launched them. */
  readonly infraCpu: ReadonlyMap<string, number>
  /** Share of all cores busy (any process) during the phase. */
  readonly machineBusy: number
  /** RSS of this process at the end of the phase. */
  readonly rss: number
}

/** Profiles phases with the V8 profiler of this process, when asked to. */
class PhaseProfiler {
  readonly #dir: string | undefined
  readonly #session = new Session()

  constructor(dir: string | undefined) {
    this.#dir = dir
    if (dir === undefined) return
    mkdirSync(dir, { recursive: true })
    this.#session.connect()
  }

  async run<T>(name: string, work: () => Promise<T>): Promise<T> {
    if (this.#dir === undefined) return work()
    await this.#session.post('Profiler.enable')
    await this.#session.post('Profiler.start')
    try {
      return await work()
    } finally {
      const { profile } = await this.#session.post('Profiler.stop')
      writeFileSync(join(this.#dir, `producer-${name}.cpuprofile`), JSON.stringify(profile))
    }
  }

  close(): void {
    if (this.#dir !== undefined) this.#session.disconnect()
  }
}

/** Both sources' cycles at once, as the service runs them. */
async function both(
  runtime: ProducerRuntime,
  pids: { simulator: number | undefined; infra: ReadonlyMap<string, number> },
  profiler: PhaseProfiler,
  name: string,
): Promise<Phase> {
  const cpuBefore = process.cpuUsage()
  const mainBefore = process.threadCpuUsage()
  const simBefore = await processCpuSeconds(pids.simulator)
  const infraBefore = await infraCpuSeconds(pids.infra)
  const machineBefore = await machineTicks()
  // Timed inside the profiled region, so writing a profile does not count.
  let seconds = 0
  const summaries = await profiler.run(name, async () => {
    const started = performance.now()
    const done = await Promise.all(runtime.sources.map((source) => runCycle(runtime.context, source)))
    seconds = (performance.now() - started) / 1000
    return done
  })
  return {
    summaries,
    seconds,
    cpu: cpuSeconds(cpuBefore),
    mainCpu: cpuSeconds(mainBefore, process.threadCpuUsage(mainBefore)),
    simulatorCpu: (await processCpuSeconds(pids.simulator)) - simBefore,
    infraCpu: await infraCpuSeconds(pids.infra).then(
      (after) => new Map([...after].map(([part, cpu]) => [part, cpu - (infraBefore.get(part) ?? 0)])),
    ),
    machineBusy: busyShare(machineBefore, await machineTicks()),
    rss: process.memoryUsage().rss,
  }
}

const total = (phase: Phase, field: 'fetched' | 'published' | 'unchanged' | 'deleted' | 'invalid') =>
  phase.summaries.reduce((sum, s) => sum + s[field], 0)

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`

function cpuLine(phase: Phase): string {
  // CPU per record does not depend on how busy the machine is, unlike records/s.
  const records = total(phase, 'fetched')
  const perRecord = (cpu: number) => (records > 0 ? `, ${((cpu * 1e6) / records).toFixed(1)} µs/record` : '')
  return `producer CPU ${phase.cpu.toFixed(2)} s (${Math.round((100 * phase.cpu) / phase.seconds)}% of one core${perRecord(phase.cpu)}; main thread ${phase.mainCpu.toFixed(2)} s, ${Math.round((100 * phase.mainCpu) / phase.seconds)}%${perRecord(phase.mainCpu)}), simulator CPU ${phase.simulatorCpu.toFixed(2)} s, ${[...phase.infraCpu].map(([part, cpu]) => `${part} CPU ${cpu.toFixed(2)} s${perRecord(cpu)}, `).join('')}all ${availableParallelism()} cores ${Math.round(100 * phase.machineBusy)}% busy; producer RSS ${mib(phase.rss)} after`
}

function firstSyncLine(label: string, phase: Phase): string {
  const records = total(phase, 'fetched')
  const perSecond = records / phase.seconds
  return (
    `${label}: ${records} records, ${total(phase, 'published')} published and acknowledged in ` +
    `${phase.seconds.toFixed(2)} s = ${Math.round(perSecond)} records/s; ` +
    `${(perSecond / FIRST_SYNC_TARGET_PER_SECOND).toFixed(2)} of the ${FIRST_SYNC_TARGET_PER_SECOND}/s target (≥ 1 meets it); ` +
    cpuCeiling(perSecond, phase.machineBusy, 'records/s', FIRST_SYNC_TARGET_PER_SECOND)
  )
}

function outcomes(phase: Phase): string {
  return phase.summaries
    .map(
      (s) =>
        `${s.source} ${s.outcome} (${s.pages} pages, scanned in ${s.scanMs} ms, done in ${s.durationMs} ms)`,
    )
    .join(', ')
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      customers: { type: 'string', default: '100000' },
      products: { type: 'string', default: '10000' },
      'page-size': { type: 'string', default: '1000' },
      'scan-threads': { type: 'string' },
      profile: { type: 'string' },
    },
  })
  const profiler = new PhaseProfiler(values.profile)
  const out = (line: string) => process.stdout.write(`${line}\n`)
  const runs = join(cacheDir, 'bench-runs')
  mkdirSync(runs, { recursive: true })
  const dataDir = mkdtempSync(join(runs, 'producer-'))
  const cleanups: Array<() => Promise<unknown>> = [
    async () => rmSync(dataDir, { recursive: true, force: true }),
    async () => profiler.close(),
  ]
  try {
    const infraStarted = performance.now()
    const infra: LocalInfra = await startLocalInfra({
      dataDir,
      ports: { kafka: 0, redis: 0 },
      prism: false,
      log: (line) => process.stderr.write(`[infra] ${line}\n`),
    })
    cleanups.push(() => infra.stop())
    const simulator = await startSimulatorProcess([
      '--customers',
      values.customers,
      '--products',
      values.products,
      '--page-size',
      values['page-size'],
      '--paging',
      'page',
    ])
    cleanups.push(() => stopProcess(simulator.child))
    const pids = { simulator: simulator.child.pid, infra: await infraPids(dataDir, infra.redisUrl) }
    process.stderr.write(`[infra] ready in ${((performance.now() - infraStarted) / 1000).toFixed(1)} s\n`)

    // Info lines are formatted as in production, then dropped: logging cost is part of the figure.
    const sink = new Writable({ write: (_chunk, _encoding, done) => done() })
    const logger = createLogger({ service: 'producer', level: 'info', pretty: false, destination: sink })
    /** A producer runtime on topics and Redis state of its own: its first cycle is a first sync. */
    const freshRuntime = async (): Promise<{ runtime: ProducerRuntime; config: Config }> => {
      const suffix = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`
      const config = loadConfig({
        KAFKA_BROKERS: infra.kafkaBrokers.join(','),
        REDIS_URL: infra.redisUrl,
        CRM_BASE_URL: simulator.url,
        INVENTORY_BASE_URL: simulator.url,
        TOPIC_CUSTOMERS: `bench-customers-${suffix}`,
        TOPIC_PRODUCTS: `bench-products-${suffix}`,
        TOPIC_DLQ: `bench-dlq-${suffix}`,
        METRICS_PORT: '0',
        LOG_LEVEL: 'info',
        ...(values['scan-threads'] === undefined ? {} : { SOURCE_SCAN_THREADS: values['scan-threads'] }),
      })
      const runtime = await createProducerRuntime(config, logger, { prefix: `bench-${suffix}` })
      cleanups.push(() => runtime.close())
      return { runtime, config }
    }
    const { runtime, config } = await freshRuntime()

    out(
      `producer benchmark: ${values.customers} customers + ${values.products} products in pages of ${values['page-size']}, ` +
        `${config.TOPIC_PARTITIONS} partitions, ${config.SOURCE_SCAN_THREADS} scan threads, simulator in pid ${simulator.child.pid}; ` +
        // Other work on the machine skews every figure; the load average says whether there was any.
        `load average ${loadavg()[0]?.toFixed(2)} on ${availableParallelism()} cores`,
    )

    const first = await both(runtime, pids, profiler, 'first-sync')
    out(firstSyncLine('first sync (page paging, freshly started broker)', first))
    out(`  ${outcomes(first)}; ${cpuLine(first)}`)

    const repoll = await both(runtime, pids, profiler, 'repoll')
    out(
      `unchanged re-poll (page paging): ${total(repoll, 'fetched')} records, ${total(repoll, 'unchanged')} unchanged, ` +
        `${total(repoll, 'published') + total(repoll, 'deleted')} messages published in ${repoll.seconds.toFixed(2)} s; ` +
        `${(repoll.seconds / REPOLL_TARGET_SECONDS).toFixed(2)} of the ${REPOLL_TARGET_SECONDS} s target (≤ 1 meets it)`,
    )
    out(`  ${outcomes(repoll)}; ${cpuLine(repoll)}`)

    // Whole-collection listings carry an ETag the producer keeps: the poll after a full read is a 304.
    await setPaging(simulator.url, 'array')
    const arrayFull = await both(runtime, pids, profiler, 'array-full')
    const arrayRepoll = await both(runtime, pids, profiler, 'array-304')
    out(
      `unchanged re-poll (array paging): full read ${arrayFull.seconds.toFixed(2)} s ` +
        `(${total(arrayFull, 'fetched')} records, ${total(arrayFull, 'published')} published); ` +
        `then with If-None-Match ${(arrayRepoll.seconds * 1000).toFixed(0)} ms ` +
        `(${outcomes(arrayRepoll)}, ${total(arrayRepoll, 'published')} published)`,
    )

    // The same first sync once more, on new topics and state: the broker's JVM is warm by now. The
    // first runtime goes first, as a service runs one (its idle workers and clients would share the
    // cores and the heap with the second).
    await setPaging(simulator.url, 'page')
    await runtime.close()
    const second = await freshRuntime()
    const warm = await both(second.runtime, pids, profiler, 'first-sync-warm')
    out(firstSyncLine('first sync (page paging, warm broker, new topics and state)', warm))
    out(`  ${outcomes(warm)}; ${cpuLine(warm)}`)

    const memory = process.memoryUsage()
    out(
      `producer process: RSS ${mib(memory.rss)} now, ${mib(process.resourceUsage().maxRSS * 1024)} peak; ` +
        `heap used ${mib(memory.heapUsed)}`,
    )
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined)
  }
}

await main()
