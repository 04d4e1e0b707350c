/**
 * Child processes of the local launcher (the Kafka JVM, redis-server, Prism, our services): spawned
 * with their output in a log file, stopped on request, and never left behind when we exit.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import {
  closeSync,
  createWriteStream,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { dirname } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { ErrorCodes, PipelineError } from '../errors.ts'

/** What to run, and where its output and pid go. */
export interface ChildSpec {
  readonly name: string
  readonly command: string
  readonly args: readonly string[]
  readonly logFile: string
  readonly env?: NodeJS.ProcessEnv
  readonly cwd?: string
  /** Written with the pid while the child runs, so a later run can reap it after a hard crash. */
  readonly pidFile?: string
  /** Also show the child's output on our stdout, each line behind this prefix (like compose). */
  readonly echoPrefix?: string
}

/** A running child under our control. */
export interface ManagedChild {
  readonly name: string
  readonly pid: number
  readonly logFile: string
  /** Set once the child has exited, with a one-line error when that was not our doing. */
  exitError(): PipelineError | undefined
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>
}

const live = new Set<ChildProcess>()

// A synchronous last resort: whatever way our process ends, its children end with it.
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

/** Starts `spec` as a managed child. */
export function spawnChild(spec: ChildSpec): ManagedChild {
  mkdirSync(dirname(spec.logFile), { recursive: true })
  const out = openSync(spec.logFile, 'a')
  let child: ChildProcess
  try {
    child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: spec.env ?? process.env,
      stdio: spec.echoPrefix === undefined ? ['ignore', out, out] : ['ignore', 'pipe', 'pipe'],
      // Own process group: a terminal's Ctrl-C reaches only us, and we stop children in order.
      detached: true,
    })
  } finally {
    closeSync(out)
  }
  if (spec.echoPrefix !== undefined) echoLines(child, spec.echoPrefix, spec.logFile)
  live.add(child)
  let stopping = false
  let exitError: PipelineError | undefined
  const exited = new Promise<void>((resolve) => {
    const done = (code: number | null, signal: NodeJS.Signals | null) => {
      live.delete(child)
      if (spec.pidFile) rmSync(spec.pidFile, { force: true })
      if (!stopping) {
        exitError = new PipelineError(
          ErrorCodes.INFRA_EXITED,
          `${spec.name} exited unexpectedly (${signal ?? `code ${code}`}); see ${spec.logFile}`,
          { details: { name: spec.name, code, signal } },
        )
      }
      resolve()
    }
    child.once('exit', done)
    child.once('error', (error) => {
      stopping = false
      exitError = new PipelineError(
        ErrorCodes.INFRA_EXITED,
        `${spec.name} could not start: ${error.message}`,
        {
          cause: error,
        },
      )
      live.delete(child)
      resolve()
    })
  })
  const pid = child.pid ?? -1
  if (spec.pidFile && pid > 0) {
    mkdirSync(dirname(spec.pidFile), { recursive: true })
    writeFileSync(spec.pidFile, `${pid}\n`)
  }
  return {
    name: spec.name,
    pid,
    logFile: spec.logFile,
    exitError: () => exitError,
    async stop(graceMs = 15_000) {
      if (!live.has(child)) return
      stopping = true
      child.kill('SIGTERM')
      const killed = await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)])
      if (!killed) {
        child.kill('SIGKILL')
        await exited
      }
    },
  }
}

function echoLines(child: ChildProcess, prefix: string, logFile: string): void {
  const file = createWriteStream(logFile, { flags: 'a' })
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue
    createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) => {
      file.write(`${line}\n`)
      process.stdout.write(`${prefix}${line}\n`)
    })
  }
  child.once('exit', () => file.end())
}

/**
 * Kills a process left by an earlier run that died without cleaning up (its pid file survived), but
 * only when its command line still contains `marker`, so a recycled pid is never hit.
 */
export async function reapStale(pidFile: string, marker: string): Promise<boolean> {
  let pid: number
  try {
    pid = Number.parseInt(readFileSync(pidFile, 'utf8'), 10)
  } catch {
    return false
  }
  rmSync(pidFile, { force: true })
  if (!Number.isInteger(pid) || pid <= 1) return false
  let cmdline: string
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
  } catch {
    return false
  }
  if (!cmdline.includes(marker)) return false
  process.kill(pid, 'SIGKILL')
  for (let i = 0; i < 50; i++) {
    try {
      process.kill(pid, 0)
    } catch {
      return true
    }
    await sleep(100)
  }
  return true
}

/** The last `lines` lines of a log file, for error messages that point at the cause. */
export function tailFile(file: string, lines = 5): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return ''
  }
}
