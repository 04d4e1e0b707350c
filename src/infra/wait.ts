/** Polling until a condition holds, with a deadline: how the launcher decides a part is ready. */
import { setTimeout as sleep } from 'node:timers/promises'
import { ErrorCodes, PipelineError } from '../errors.ts'
import { type ManagedChild, tailFile } from './child.ts'

/** Options of {@link waitUntil}. */
export interface WaitOptions {
  readonly timeoutMs: number
  readonly intervalMs?: number
  /** Checked between attempts; a non-undefined return aborts the wait with that error. */
  readonly abort?: () => Error | undefined
}

/**
 * Calls `probe` until it resolves true. Resolves false when the deadline passes first; rejects with
 * the abort error when `abort` reports one (a child that died while we waited).
 */
export async function waitUntil(probe: () => Promise<boolean>, options: WaitOptions): Promise<boolean> {
  const deadline = Date.now() + options.timeoutMs
  const interval = options.intervalMs ?? 250
  while (Date.now() < deadline) {
    const aborted = options.abort?.()
    if (aborted) throw aborted
    if (await probe().catch(() => false)) return true
    await sleep(interval)
  }
  return false
}

/** Options of {@link awaitChildReady}. */
export interface ChildReadyOptions {
  /** Names the part in the error, e.g. "Kafka on 127.0.0.1:9092". */
  readonly what: string
  readonly timeoutMs: number
  readonly intervalMs?: number
  /** The log that explains a failure best (defaults to the child's own output). */
  readonly logFile?: string
}

/**
 * Waits until `probe` succeeds for a freshly started child. On failure (the child exited, or the
 * deadline passed) it stops the child, so nothing is left behind, and throws one clear line.
 *
 * @throws {PipelineError} `PIPELINE_INFRA_NOT_READY`
 */
export async function awaitChildReady(
  child: ManagedChild,
  probe: () => Promise<boolean>,
  options: ChildReadyOptions,
): Promise<void> {
  const logFile = options.logFile ?? child.logFile
  let failure: string | undefined
  try {
    const ready = await waitUntil(probe, {
      timeoutMs: options.timeoutMs,
      intervalMs: options.intervalMs ?? 250,
      abort: () => child.exitError(),
    })
    if (!ready) failure = `${options.what} was not ready within ${Math.round(options.timeoutMs / 1000)} s`
  } catch (error) {
    const lastLine = tailFile(logFile, 1) || tailFile(child.logFile, 1)
    failure = `${(error as Error).message}${lastLine ? `: ${lastLine}` : ''}`
  }
  if (failure === undefined) return
  await child.stop(1000)
  throw new PipelineError(ErrorCodes.INFRA_NOT_READY, `${failure}; see ${logFile}`, {
    details: { what: options.what },
  })
}
