/**
 * Throughput of the mock Analytics service: `node_modules/.bin/node bench/mock-analytics.bench.ts`.
 *
 * The service runs in a child process (this file, started again with `--serve`) so the load generator
 * and the server do not share one event loop. An undici Pool of keep-alive connections POSTs distinct
 * idempotency keys for a few seconds after a warm-up; the figures are printed, nothing is asserted.
 * Options: `--seconds N`, `--warmup N`, `--connections N`, `--pipelining 1,10`.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { startMockAnalytics } from '../src/services/mock-analytics/server.ts'

/** The rate the mock must sustain so it is never the bottleneck of a pipeline benchmark. */
const TARGET_PER_SECOND = 10_000

interface Scenario {
  readonly connections: number
  readonly pipelining: number
  readonly warmupMs: number
  readonly measureMs: number
}

interface Result {
  readonly requests: number
  readonly errors: number
  readonly elapsedMs: number
  /** CPU time the server process used while measured, in ms. */
  readonly serverCpuMs: number
  /** Latencies in ms, sorted. */
  readonly latencies: Float64Array
}

/** The child's side: serve on a free port, tell the parent which, stop when the parent goes. */
async function serve(): Promise<void> {
  const mock = await startMockAnalytics({ port: 0 })
  process.send?.({ port: mock.port })
  // The parent asks for the server's CPU time around a measurement, to tell who was the bottleneck.
  process.on('message', () => process.send?.({ cpu: process.cpuUsage() }))
  process.once('disconnect', () => void mock.close())
}

async function serverCpuMs(child: ChildProcess): Promise<number> {
  child.send('cpu')
  const [message] = (await once(child, 'message')) as [{ cpu: NodeJS.CpuUsage }]
  return (message.cpu.user + message.cpu.system) / 1000
}

async function startServerProcess(): Promise<{ child: ChildProcess; url: string }> {
  // process.execPath is the pinned node this bench was started with (node_modules/.bin/node).
  const child = fork(fileURLToPath(import.meta.url), ['--serve'], { execPath: process.execPath })
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`the server process exited with code ${code} before it listened`)
  })
  const [message] = (await Promise.race([once(child, 'message'), exited])) as [{ port: number }]
  return { child, url: `http://127.0.0.1:${message.port}` }
}

/** A customer view of a realistic size (about 600 bytes), as the consumer would deliver it. */
const body = JSON.stringify({
  viewType: 'customer',
  customer: {
    id: '1',
    name: 'Ada Lovelace',
    email: 'ada@example.com',
    status: 'active',
    productIds: ['100', '200', '300'],
    updatedAt: '2025-01-01T00:00:00Z',
  },
  products: ['100', '200', '300'].map((id) => ({
    id,
    sku: `SKU-${id}`,
    name: `Product ${id}`,
    price: 19.99,
    stock: 42,
    updatedAt: '2025-01-01T00:00:00Z',
  })),
  missingProductIds: [],
  summary: { productCount: 3, totalStockValue: 2518.74, lowStockCount: 0 },
})

async function drive(server: { child: ChildProcess; url: string }, scenario: Scenario): Promise<Result> {
  const pool = new Pool(server.url, { connections: scenario.connections, pipelining: scenario.pipelining })
  const latencies: number[] = []
  let sequence = 0
  let errors = 0
  let measuring = false
  let stopAt = 0
  const worker = async (): Promise<void> => {
    while (performance.now() < stopAt) {
      const n = sequence++
      // Distinct keys, several per view, so the store both adds keys and replaces views as in real use.
      const key = `customer:${n % 5000}:${n.toString(16).padStart(64, '0')}`
      const started = performance.now()
      try {
        const response = await pool.request({
          path: '/analytics/data',
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': key },
          body,
        })
        await response.body.dump()
        if (response.statusCode !== 200) errors += 1
      } catch {
        errors += 1
      }
      if (measuring) latencies.push(performance.now() - started)
    }
  }
  const inFlight = scenario.connections * scenario.pipelining
  const run = (ms: number): Promise<unknown> => {
    stopAt = performance.now() + ms
    return Promise.all(Array.from({ length: inFlight }, worker))
  }
  await run(scenario.warmupMs)
  measuring = true
  errors = 0
  const cpuBefore = await serverCpuMs(server.child)
  const started = performance.now()
  await run(scenario.measureMs)
  const elapsedMs = performance.now() - started
  const serverCpu = (await serverCpuMs(server.child)) - cpuBefore
  await pool.close()
  const sorted = new Float64Array(latencies).sort()
  return { requests: latencies.length, errors, elapsedMs, serverCpuMs: serverCpu, latencies: sorted }
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

function report(scenario: Scenario, result: Result): string {
  const perSecond = result.requests / (result.elapsedMs / 1000)
  return [
    `connections=${scenario.connections} pipelining=${scenario.pipelining}:`,
    `${Math.round(perSecond)} req/s`,
    `p50=${percentile(result.latencies, 50).toFixed(2)} ms`,
    `p99=${percentile(result.latencies, 99).toFixed(2)} ms`,
    `errors=${result.errors}`,
    `server CPU ${Math.round((100 * result.serverCpuMs) / result.elapsedMs)}%`,
    // On a shared machine the server may not get a whole core; this is what one core of it would take.
    `${Math.round(result.requests / (result.serverCpuMs / 1000))} req per server CPU-second`,
    `target ${TARGET_PER_SECOND} req/s: x${(perSecond / TARGET_PER_SECOND).toFixed(2)}`,
  ].join('  ')
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '2' },
      connections: { type: 'string', default: '64' },
      pipelining: { type: 'string', default: '1,10' },
    },
  })
  const server = await startServerProcess()
  const { child, url } = server
  try {
    process.stdout.write(
      `mock Analytics benchmark: ${body.length}-byte records, server in pid ${child.pid}\n`,
    )
    for (const pipelining of values.pipelining.split(',').map(Number)) {
      const scenario: Scenario = {
        connections: Number(values.connections),
        pipelining,
        warmupMs: Number(values.warmup) * 1000,
        measureMs: Number(values.seconds) * 1000,
      }
      // Each scenario starts from an empty store, so one does not pay for the memory of the last.
      await fetch(`${url}/control/reset`, { method: 'POST' })
      process.stdout.write(`${report(scenario, await drive(server, scenario))}\n`)
    }
  } finally {
    child.disconnect()
  }
}

if (process.argv.includes('--serve')) await serve()
else await main()
