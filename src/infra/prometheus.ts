/**
 * A real Prometheus for local runs and tests: the system `prometheus` (Debian package `prometheus`,
 * which also gives `promtool`) on 127.0.0.1 with a generated configuration, its own storage folder
 * and the pipeline's alert rules.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ErrorCodes, PipelineError } from '../errors.ts'
import { type ManagedChild, reapStale, spawnChild } from './child.ts'
import { assertPortFree } from './ports.ts'
import { awaitChildReady } from './wait.ts'

/** Options of {@link startPrometheus}. */
export interface PrometheusOptions {
  /** Holds the generated configuration, the TSDB and the log. */
  readonly dataDir: string
  /** Listen port on 127.0.0.1; default 9090. */
  readonly port?: number
  /** Scrape jobs: job name → `host:port` targets (their `/metrics`). */
  readonly targets: Readonly<Record<string, readonly string[]>>
  /** Scrape and rule evaluation interval, e.g. `1s`; default `5s` (as in deploy/prometheus.yml). */
  readonly interval?: string
  /** Absolute paths of rule files to load, e.g. deploy/alerts.yml. */
  readonly ruleFiles?: readonly string[]
  readonly readyTimeoutMs?: number
}

/** A running local Prometheus. */
export interface LocalPrometheus {
  /** `http://127.0.0.1:<port>`: the UI and the HTTP API (`/api/v1/query`). */
  readonly url: string
  readonly port: number
  readonly child: ManagedChild
  stop(): Promise<void>
}

/** One series of an instant query's answer. */
export interface PrometheusSample {
  readonly metric: Readonly<Record<string, string>>
  readonly value: number
}

/**
 * Finds the `prometheus` binary.
 *
 * @throws {PipelineError} `PIPELINE_INFRA_PROMETHEUS_MISSING` with the command that installs it
 */
export function prometheusPath(): string {
  const found = spawnSync('sh', ['-c', 'command -v prometheus'], { encoding: 'utf8' })
  const path = found.stdout.trim()
  if (found.status === 0 && path) return path
  throw new PipelineError(
    ErrorCodes.INFRA_PROMETHEUS_MISSING,
    'prometheus was not found: install it (sudo apt-get install -y prometheus, which also gives promtool)',
  )
}

/** The configuration file for `options`; JSON, which Prometheus reads as YAML. */
export function prometheusConfig(
  options: Pick<PrometheusOptions, 'targets' | 'interval' | 'ruleFiles'>,
): string {
  const interval = options.interval ?? '5s'
  return `${JSON.stringify(
    {
      global: { scrape_interval: interval, evaluation_interval: interval },
      rule_files: [...(options.ruleFiles ?? [])],
      scrape_configs: Object.entries(options.targets).map(([job, targets]) => ({
        job_name: job,
        static_configs: [{ targets: [...targets] }],
      })),
    },
    null,
    2,
  )}\n`
}

/**
 * Starts Prometheus on 127.0.0.1:`port` and resolves once `/-/ready` answers.
 *
 * @throws {PipelineError} on a missing binary, a busy port, or no readiness within the timeout
 */
export async function startPrometheus(options: PrometheusOptions): Promise<LocalPrometheus> {
  const port = options.port ?? 9090
  await assertPortFree(port, 'the local Prometheus', 'another port for Prometheus')
  const binary = prometheusPath()
  mkdirSync(options.dataDir, { recursive: true })
  const configFile = join(options.dataDir, 'prometheus.yml')
  writeFileSync(configFile, prometheusConfig(options))
  const pidFile = join(options.dataDir, 'prometheus.pid')
  await reapStale(pidFile, 'prometheus')
  const url = `http://127.0.0.1:${port}`
  const child = spawnChild({
    name: 'prometheus',
    command: binary,
    args: [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(options.dataDir, 'tsdb')}`,
      '--storage.tsdb.retention.time=1d',
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    logFile: join(options.dataDir, 'prometheus.log'),
    pidFile,
  })
  await awaitChildReady(child, async () => (await fetch(`${url}/-/ready`)).ok, {
    what: `Prometheus on ${url}`,
    timeoutMs: options.readyTimeoutMs ?? 30_000,
    intervalMs: 200,
  })
  return { url, port, child, stop: () => child.stop(10_000) }
}

/**
 * Runs an instant query through the HTTP API (`/api/v1/query`).
 *
 * @throws {Error} when Prometheus rejects the query (a PromQL error) or answers something else than a vector
 */
export async function queryPrometheus(url: string, query: string): Promise<PrometheusSample[]> {
  const response = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query })}`)
  const body = (await response.json()) as {
    status: string
    error?: string
    data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> }
  }
  if (body.status !== 'success' || body.data === undefined)
    throw new Error(`Prometheus rejected ${query}: ${body.error ?? `HTTP ${response.status}`}`)
  if (body.data.resultType === 'scalar') {
    const [, value] = body.data.result as unknown as [number, string]
    return [{ metric: {}, value: Number(value) }]
  }
  if (body.data.resultType !== 'vector')
    throw new Error(`Prometheus answered ${query} with a ${body.data.resultType}, not a vector`)
  return body.data.result.map((series) => ({ metric: series.metric, value: Number(series.value[1]) }))
}
