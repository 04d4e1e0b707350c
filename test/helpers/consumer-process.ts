/**
 * `pipeline consumer` as a child process (`node src/cli.ts consumer`), configured from a test's
 * config through the environment, for tests that kill consumers: SIGTERM (graceful stop) or SIGKILL
 * (a crash, nothing flushed). Every child started is tracked and killed by `closeAll`, also when a
 * test fails.
 */
import { type Config, envVarNames } from '../../src/config/env.ts'
import { createAdmin } from '../../src/kafka/admin.ts'
import { ensureTopics, pipelineTopicSpecs } from '../../src/kafka/topics.ts'
import { PipelineProcess } from './pipeline-process.ts'

/** Creates the source and DLQ topics of `config`, so changes can be produced before a consumer runs. */
export async function createSourceTopics(config: Config): Promise<void> {
  const admin = createAdmin(config, 'test-admin')
  try {
    await ensureTopics(admin, pipelineTopicSpecs(config))
  } finally {
    await admin.close()
  }
}

/** The environment that makes `pipeline consumer` run with `config` and the Redis key prefix `prefix`. */
export function consumerEnv(
  config: Config,
  prefix: string,
  extra: Record<string, string> = {},
): NodeJS.ProcessEnv {
  const fromConfig: Record<string, string> = {}
  for (const name of envVarNames) {
    const value: unknown = config[name]
    if (value === undefined) continue
    fromConfig[name] = Array.isArray(value) ? value.join(',') : String(value)
  }
  return {
    ...process.env,
    ...fromConfig,
    PIPELINE_REDIS_PREFIX: prefix,
    METRICS_PORT: '0',
    LOG_LEVEL: 'info',
    ...extra,
  }
}

/** One consumer child process; its last 200 output lines are kept for failure messages. */
export class ConsumerProcess extends PipelineProcess {
  /** Resolves once both stages joined their consumer groups; rejects if the process exits first. */
  readonly ready: Promise<void>

  constructor(name: string, env: NodeJS.ProcessEnv) {
    super(name, { command: 'consumer', env, keepLines: 200 })
    this.ready = Promise.all([
      this.waitForLog(/^consumer-apply: joined/),
      this.waitForLog(/^consumer-deliver: joined/),
    ]).then(() => undefined)
    this.ready.catch(() => undefined)
  }

  /** Its last output lines (JSON log lines and anything on stderr). */
  get output(): string[] {
    return this.lines.map((line) => line.text)
  }
}

/** Starts and tracks consumer children of one test configuration. */
export class ConsumerProcesses {
  readonly #env: NodeJS.ProcessEnv
  readonly #all: ConsumerProcess[] = []
  #next = 1

  constructor(config: Config, prefix: string, extra: Record<string, string> = {}) {
    this.#env = consumerEnv(config, prefix, extra)
  }

  /** Starts a child (not waiting for it to be ready). */
  start(): ConsumerProcess {
    const child = new ConsumerProcess(`consumer-${this.#next++}`, this.#env)
    this.#all.push(child)
    return child
  }

  /** The children still running. */
  running(): ConsumerProcess[] {
    return this.#all.filter((child) => child.running)
  }

  /** Output of every child, for a failure message. */
  describe(lines = 15): string {
    return this.#all.map((child) => `--- ${child.name} (pid ${child.pid})\n${child.tail(lines)}`).join('\n')
  }

  /** Stops every child still running: SIGTERM, then SIGKILL after `timeoutMs`. */
  async closeAll(timeoutMs = 15_000): Promise<void> {
    await Promise.all(this.running().map((child) => child.stop('SIGTERM', timeoutMs)))
  }
}
