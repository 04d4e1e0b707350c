/**
 * What `pipeline consumer` holds before any work: `node_modules/.bin/node bench/consumer-startup.bench.ts`.
 *
 * The consumer starts on fresh, empty topics; once `/readyz` answers (Kafka and Redis connected, both
 * groups joined) and 5 s more have passed, the bench reads its RSS from /proc (anonymous and file-backed
 * parts) and V8's heap spaces from its own `/metrics`, then stops it. Each variant runs `--runs` times
 * (default 3), one process at a time: the compiled build (`dist/`, compiled here first, as the Docker
 * image runs it) and the TypeScript sources (type stripping, as `npm start` runs them), each with no
 * NODE_OPTIONS and with every `--node-options` given (comma-separated list of NODE_OPTIONS strings).
 * Kafka and Redis are started on free ports unless KAFKA_BROKERS and REDIS_URL point at running ones.
 * Figures are printed, not asserted; the consumer's peak under load is `consumer.bench.ts`'s.
 */
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { spawnChild } from '../src/infra/child.ts'
import { projectRoot } from '../src/infra/paths.ts'
import { freePort } from '../src/infra/ports.ts'
import type { LocalInfra } from '../src/infra/stack.ts'
import { compileBuild, compiledCli } from './build.ts'
import { withBenchInfra } from './infra.ts'
import { processMemoryBytes } from './proc.ts'

/** After readiness, so that start-up work in flight (first fetches, metadata) has settled. */
const SETTLE_MS = 5000

interface Variant {
  readonly build: 'compiled' | 'sources'
  readonly nodeOptions: string
}

interface Sample {
  readonly rss: number
  readonly anon: number
  readonly file: number
  /** V8 heap spaces' committed bytes, by space (new, old, code, large_object…). */
  readonly spaces: ReadonlyMap<string, number>
  readonly external: number
}

const out = (line: string): void => void process.stdout.write(`${line}\n`)
const mb = (bytes: number): string => (bytes / 1e6).toFixed(0)

/** One sample of a metric family from Prometheus text, by its label value `label`. */
function metricByLabel(text: string, name: string, label: string): Map<string, number> {
  const values = new Map<string, number>()
  const pattern = new RegExp(`^${name}\\{[^}]*${label}="([^"]+)"[^}]*\\} (\\S+)$`, 'gm')
  for (const match of text.matchAll(pattern)) values.set(match[1] ?? '', Number(match[2]))
  return values
}

function metric(text: string, name: string): number {
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)
  return match ? Number(match[1]) : Number.NaN
}

async function measure(infra: LocalInfra, variant: Variant, runDir: string): Promise<Sample> {
  const suffix = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`
  const port = await freePort()
  const entry = variant.build === 'compiled' ? compiledCli : join(projectRoot, 'src', 'cli.ts')
  const consumer = spawnChild({
    name: 'consumer',
    command: process.execPath,
    args: [entry, 'consumer'],
    cwd: projectRoot,
    logFile: join(runDir, `consumer-${suffix}.log`),
    env: {
      ...process.env,
      KAFKA_BROKERS: infra.kafkaBrokers.join(','),
      REDIS_URL: infra.redisUrl,
      PIPELINE_REDIS_PREFIX: `startup-${suffix}`,
      // Never called: nothing is on the topics.
      ANALYTICS_URL: 'http://127.0.0.1:9/analytics/data',
      TOPIC_CUSTOMERS: `startup-customers-${suffix}`,
      TOPIC_PRODUCTS: `startup-products-${suffix}`,
      TOPIC_DLQ: `startup-dlq-${suffix}`,
      TOPIC_REFRESH: `startup-refresh-${suffix}`,
      CONSUMER_GROUP: `startup-group-${suffix}`,
      METRICS_PORT: String(port),
      LOG_LEVEL: 'warn',
      NODE_OPTIONS: variant.nodeOptions,
    },
  })
  try {
    const deadline = performance.now() + 120_000
    for (;;) {
      const error = consumer.exitError()
      if (error) throw error
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (answer) => answer.ok,
        () => false,
      )
      if (ready) break
      if (performance.now() > deadline) throw new Error('the consumer was not ready within 120 s')
      await sleep(100)
    }
    await sleep(SETTLE_MS)
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
    const [rss, anon, file] = await Promise.all(
      (['VmRSS', 'RssAnon', 'RssFile'] as const).map((field) => processMemoryBytes(consumer.pid, field)),
    )
    return {
      rss: rss ?? Number.NaN,
      anon: anon ?? Number.NaN,
      file: file ?? Number.NaN,
      spaces: metricByLabel(metrics, 'nodejs_heap_space_size_total_bytes', 'space'),
      external: metric(metrics, 'nodejs_external_memory_bytes'),
    }
  } finally {
    await consumer.stop(30_000)
  }
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      'node-options': { type: 'string', default: '--max-semi-space-size=8' },
    },
  })
  const runs = Number(values.runs)
  const options = ['', ...values['node-options'].split(',').filter((o) => o.trim() !== '')]
  const variants: Variant[] = (['compiled', 'sources'] as const).flatMap((build) =>
    options.map((nodeOptions) => ({ build, nodeOptions })),
  )
  out(
    `consumer start-up memory: ${runs} run(s) per variant; load average ${loadavg()[0]?.toFixed(2)} at the start`,
  )
  compileBuild()
  await withBenchInfra('consumer-startup', async (infra, runDir) => {
    out('')
    out(
      '| consumer | NODE_OPTIONS | RSS at join, MB: median (range) | anonymous / file-backed | V8 heap committed: new, old, code, large objects | external |',
    )
    out('| --- | --- | ---: | ---: | --- | ---: |')
    for (const variant of variants) {
      const samples: Sample[] = []
      for (let i = 0; i < runs; i++) samples.push(await measure(infra, variant, runDir))
      const rss = samples.map((s) => s.rss)
      const mid = samples.find((s) => s.rss === median(rss)) ?? samples[0]
      if (!mid) continue
      const space = (name: string) => mb(mid.spaces.get(name) ?? Number.NaN)
      out(
        `| ${variant.build === 'compiled' ? 'compiled (dist/)' : 'sources (type stripping)'} | ` +
          `${variant.nodeOptions || '(none)'} | ${mb(median(rss))} (${mb(Math.min(...rss))}–${mb(Math.max(...rss))}) | ` +
          `${mb(mid.anon)} / ${mb(mid.file)} | ${space('new')}, ${space('old')}, ${space('code')}, ${space('large_object')} | ` +
          `${mb(mid.external)} |`,
      )
    }
    out('')
    out(`load average at the end: ${loadavg()[0]?.toFixed(2)}`)
  })
}

await main()
