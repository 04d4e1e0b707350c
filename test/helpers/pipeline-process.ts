/**
 * A `pipeline <command>` child process (`node src/cli.ts <command>`) with its output kept line by line,
 * stdout and stderr alike. Every child started is killed when the test process exits, however it exits.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const repoRoot = fileURLToPath(new URL('../..', import.meta.url))

/** Children still alive: killed when the test process exits, however it exits. */
const live = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

/** One output line of a child, and which stream it came on. */
export interface OutputLine {
  readonly stream: 'stdout' | 'stderr'
  readonly text: string
}

/** Options of {@link PipelineProcess}. */
export interface PipelineProcessOptions {
  /** The `pipeline` subcommand: `consumer`, `producer`, `mock-analytics`, … */
  readonly command: string
  readonly env: NodeJS.ProcessEnv
  /** How many output lines to keep (the last ones); every line when undefined. */
  readonly keepLines?: number
}

/** One `pipeline` child process. */
export class PipelineProcess {
  readonly name: string
  readonly #child: ChildProcess
  readonly #keep: number
  readonly #watchers = new Set<(line: OutputLine) => void>()
  /** Its output lines (all, or the last `keepLines`), in arrival order. */
  readonly lines: OutputLine[] = []
  /** Resolves with the exit code or signal (`exit 0`, `SIGKILL`) once the process has exited. */
  readonly exited: Promise<string>
  #exitedWith: string | undefined

  constructor(name: string, options: PipelineProcessOptions) {
    this.name = name
    this.#keep = options.keepLines ?? Number.POSITIVE_INFINITY
    this.#child = spawn(process.execPath, ['src/cli.ts', options.command], {
      cwd: repoRoot,
      env: options.env,
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
    for (const stream of ['stdout', 'stderr'] as const) {
      const input = this.#child[stream]
      if (input) createInterface({ input }).on('line', (text) => this.#take({ stream, text }))
    }
  }

  #take(line: OutputLine): void {
    this.lines.push(line)
    if (this.lines.length > this.#keep) this.lines.shift()
    for (const watch of this.#watchers) watch(line)
  }

  /** Calls `watch` with every line from now on. */
  onLine(watch: (line: OutputLine) => void): void {
    this.#watchers.add(watch)
  }

  /**
   * The first JSON log line from now on whose `msg` matches `pattern`, parsed.
   *
   * @throws when the process exits first, with its last output
   */
  waitForLog(pattern: RegExp): Promise<Record<string, unknown> & { msg: string }> {
    return new Promise((resolve, reject) => {
      const watch = (line: OutputLine) => {
        const parsed = parseLogLine(line.text)
        if (parsed && pattern.test(parsed.msg)) {
          this.#watchers.delete(watch)
          resolve(parsed)
        }
      }
      this.#watchers.add(watch)
      void this.exited.then((how) => {
        if (!this.#watchers.delete(watch)) return
        reject(new Error(`${this.name} exited (${how}) before logging ${pattern}:\n${this.tail()}`))
      })
    })
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
    return this.lines
      .slice(-lines)
      .map((line) => line.text)
      .join('\n')
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

/** A pino JSON line, or undefined for anything else (a stack trace, a library's warning). */
export function parseLogLine(text: string): (Record<string, unknown> & { msg: string }) | undefined {
  if (!text.startsWith('{')) return undefined
  try {
    const parsed: unknown = JSON.parse(text)
    if (
      typeof parsed === 'object' &&
      parsed !== null &&
      typeof (parsed as { msg?: unknown }).msg === 'string'
    )
      return parsed as Record<string, unknown> & { msg: string }
  } catch {
    // not JSON after all
  }
  return undefined
}
