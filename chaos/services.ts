/**
 * The pipeline's own processes in a chaos run (`pipeline producer`, `pipeline consumer`): started as
 * children with their output in a log file per slot, SIGKILLed on schedule and restarted. A child that
 * dies when nobody killed it is restarted too (as an orchestrator would) and counted: the report
 * lists such exits, since a service should survive a broker or Redis restart on its own.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { projectRoot } from '../src/infra/paths.ts'
import type { Role } from './schedule.ts'

/** Children alive at any moment: killed whatever way the runner's process ends. */
const live = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

/** An exit nobody asked for. */
export interface UnexpectedExit {
  readonly slot: string
  readonly how: string
  /** The last log lines of the child before it died. */
  readonly tail: string
}

/** One replica slot: at most one child at a time, restarted after every exit. */
export class ServiceSlot {
  readonly name: string
  readonly role: Role
  readonly #env: NodeJS.ProcessEnv
  readonly #logFile: string
  readonly #onUnexpectedExit: (exit: UnexpectedExit) => void
  #child: ChildProcess | undefined
  #exited: Promise<string> = Promise.resolve('never started')
  #startedAt = 0
  #expectingExit = false
  #closed = false
  starts = 0

  constructor(
    role: Role,
    index: number,
    env: NodeJS.ProcessEnv,
    logDir: string,
    onUnexpectedExit: (exit: UnexpectedExit) => void,
  ) {
    this.role = role
    this.name = `${role}-${index}`
    this.#env = env
    this.#logFile = join(logDir, `${this.name}.log`)
    this.#onUnexpectedExit = onUnexpectedExit
  }

  /** Milliseconds since the current child started (0 when none runs). */
  uptimeMs(): number {
    return this.#child === undefined ? 0 : Date.now() - this.#startedAt
  }

  get pid(): number | undefined {
    return this.#child?.pid
  }

  /** Starts a child in this slot. */
  start(): void {
    if (this.#closed || this.#child !== undefined) return
    const out = openSync(this.#logFile, 'a')
    let child: ChildProcess
    try {
      child = spawn(process.execPath, [join(projectRoot, 'src', 'cli.ts'), this.role], {
        cwd: projectRoot,
        env: this.#env,
        stdio: ['ignore', out, out],
      })
    } finally {
      closeSync(out)
    }
    live.add(child)
    this.#child = child
    this.#startedAt = Date.now()
    this.starts++
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        live.delete(child)
        this.#child = undefined
        const how = signal ?? `exit ${code}`
        if (!this.#expectingExit && !this.#closed) {
          this.#onUnexpectedExit({ slot: this.name, how, tail: this.tail(8) })
          // Restarted like a container with restart: always, after a short back-off.
          setTimeout(() => this.start(), 1000).unref()
        }
        this.#expectingExit = false
        resolve(how)
      })
    })
  }

  /**
   * Sends `signal` to the running child and resolves with how it ended (`SIGKILL`, `exit 0`…);
   * undefined when no child was running.
   */
  async kill(signal: NodeJS.Signals, timeoutMs = 30_000): Promise<string | undefined> {
    const child = this.#child
    if (child === undefined) return undefined
    this.#expectingExit = true
    child.kill(signal)
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    try {
      return await this.#exited
    } finally {
      clearTimeout(timer)
    }
  }

  /** Stops for good: SIGTERM (a graceful stop), SIGKILL after the timeout. */
  async close(timeoutMs = 30_000): Promise<void> {
    this.#closed = true
    await this.kill('SIGTERM', timeoutMs)
  }

  /** The last lines of this slot's log. */
  tail(lines = 20): string {
    try {
      return readFileSync(this.#logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
    } catch {
      return ''
    }
  }
}

/**
 * Waits until `slot` has been up for `ms` (so a kill hits a process at work, not one still loading);
 * gives up after `timeoutMs`.
 */
export async function waitUptime(slot: ServiceSlot, ms: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (slot.uptimeMs() < ms && Date.now() < deadline) await sleep(100)
}
