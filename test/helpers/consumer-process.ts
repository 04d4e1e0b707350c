/**
 * `pipeline consumer` as a child process (`node src/cli.ts consumer`), configured from a test's
 * config through the environment, for tests that kill consumers: SIGTERM (graceful stop) or SIGKILL
 * (a crash, nothing flushed). Every child started is tracked and killed by `closeAll`, also when a
 * test fails.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { type Config, envVarNames } from '../../src/config/env.ts'
import { createAdmin } from '../../src/kafka/admin.ts'
import { ensureTopics, pipelineTopicSpecs } from '../../src/kafka/topics.ts'

const repoRoot = fileURLToPath(new URL('../..', import.meta.url))

/** Creates the source and DLQ topics of `config`, so changes can be produced before a consumer runs. */
export async function createSourceTopics(config: Config): Promise<void> {
  const admin = createAdmin(config, 'test-admin')
  try {
    await ensureTopics(admin, pipelineTopicSpecs(config))
  } finally {
    await admin.close()
  }
}

/** Children still alive: killed when the test process exits, however it exits. */
const live = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

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

/** One consumer child process. */
export class ConsumerProcess {
  readonly name: string
  readonly #child: ChildProcess
  /** Its last output lines (JSON log lines and anything on stderr), for failure messages. */
  readonly output: string[] = []
  /** Resolves with the exit code or signal once the process has exited. */
  readonly exited: Promise<string>
  /** Resolves once both stages joined their consumer groups; rejects if the process exits first. */
  readonly ready: Promise<void>
  #exitedWith: string | undefined

  constructor(name: string, env: NodeJS.ProcessEnv) {
    this.name = name
    this.#child = spawn(process.execPath, ['src/cli.ts', 'consumer'], {
      cwd: repoRoot,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    live.add(this.#child)
    this.exited = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        live.delete(this.#child)
        this.#exitedWith = signal ?? `exit ${code}`
        resolve(this.#exitedWith)
      })
    })
    const joined = new Set<string>()
    let markReady: () => void = () => undefined
    this.ready = new Promise<void>((resolve, reject) => {
      markReady = resolve
      void this.exited.then((how) =>
        reject(new Error(`${name} exited (${how}) before it was ready:\n${this.tail()}`)),
      )
    })
    this.ready.catch(() => undefined)
    const keep = (line: string) => {
      this.output.push(line)
      if (this.output.length > 200) this.output.shift()
      const match = /"msg":"(consumer-(?:apply|deliver)): joined/.exec(line)
      if (match?.[1]) {
        joined.add(match[1])
        if (joined.size === 2) markReady()
      }
    }
    if (this.#child.stdout) createInterface({ input: this.#child.stdout }).on('line', keep)
    if (this.#child.stderr) createInterface({ input: this.#child.stderr }).on('line', keep)
  }

  get pid(): number | undefined {
    return this.#child.pid
  }

  /** True until the process exited. */
  get running(): boolean {
    return this.#exitedWith === undefined
  }

  /** The last `lines` output lines. */
  tail(lines = 30): string {
    return this.output.slice(-lines).join('\n')
  }

  /**
   * Sends `signal` and waits for the exit; a process still alive after `timeoutMs` is SIGKILLed.
   *
   * @returns how it exited (`SIGKILL`, `exit 0`, …)
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000): Promise<string> {
    if (!this.running) return this.exited
    this.#child.kill(signal)
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), timeoutMs)
    try {
      return await this.exited
    } finally {
      clearTimeout(timer)
    }
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
