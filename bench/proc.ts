/**
 * What Linux's /proc tells a benchmark about other processes and the whole machine: CPU time per
 * process, how busy all cores were, and which process is which. Every reader returns NaN, undefined
 * or nothing where /proc cannot be read, so a benchmark still runs (with fewer figures) elsewhere.
 */
import { readdir, readFile } from 'node:fs/promises'

/** CPU seconds (user + system) a process has used so far, or NaN. */
export async function processCpuSeconds(pid: number | undefined): Promise<number> {
  if (pid === undefined) return Number.NaN
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
  if (stat === '') return Number.NaN
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/**
 * A memory figure of a process in bytes, or NaN: `VmRSS` (resident now), `VmHWM` (its peak), or the
 * resident memory's two parts, `RssAnon` (heap, stacks: the process's own) and `RssFile` (mapped files,
 * mostly the node binary: shared with other processes running it).
 */
export async function processMemoryBytes(
  pid: number,
  field: 'VmRSS' | 'VmHWM' | 'RssAnon' | 'RssFile',
): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)
  return match ? Number(match[1]) * 1024 : Number.NaN
}

/** Busy and total clock ticks of all cores together since boot. */
export interface MachineTicks {
  readonly busy: number
  readonly total: number
}

/** The machine's clock ticks now, or undefined. */
export async function machineTicks(): Promise<MachineTicks | undefined> {
  const line = (await readFile('/proc/stat', 'utf8').catch(() => '')).split('\n')[0] ?? ''
  if (!line.startsWith('cpu ')) return undefined
  const ticks = line.trim().split(/\s+/).slice(1).map(Number)
  const total = ticks.reduce((sum, t) => sum + t, 0)
  // idle and iowait are the 4th and 5th numbers.
  return { busy: total - (ticks[3] ?? 0) - (ticks[4] ?? 0), total }
}

/** The share (0–1) of all cores that was busy, any process, between two readings; NaN if unknown. */
export function busyShare(before: MachineTicks | undefined, after: MachineTicks | undefined): number {
  if (before === undefined || after === undefined || after.total === before.total) return Number.NaN
  return (after.busy - before.busy) / (after.total - before.total)
}

/**
 * What a phase's rate could be at most on this machine: the rate it made, divided by the share of
 * all cores the machine was busy meanwhile. The CPU the work took (every process on the machine
 * counted) then fills every core with no wait left, so no overlap or concurrency can beat it
 * without cutting that CPU. A line for the bench's output; empty when the share is unknown.
 */
export function cpuCeiling(perSecond: number, busy: number, unit: string, target: number): string {
  if (!(busy > 0)) return ''
  const ceiling = perSecond / busy
  return (
    `at most ${Math.round(ceiling)} ${unit} on this machine for the CPU this work took ` +
    `(all cores busy, no wait: ${(ceiling / target).toFixed(2)} of the target)`
  )
}

/** Pids of the processes whose command line (arguments joined by spaces) satisfies `test`. */
export async function findProcesses(test: (commandLine: string) => boolean): Promise<number[]> {
  const pids: number[] = []
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')
    if (cmdline !== '' && test(cmdline.replaceAll('\0', ' ').trim())) pids.push(Number(entry))
  }
  return pids
}

/**
 * Pids of the Kafka broker and Redis this bench launched (found by their command lines), so their
 * CPU time can be shown beside the service's; empty where that cannot be read.
 */
export async function infraPids(dataDir: string, redisUrl: string): Promise<Map<string, number>> {
  const pids = new Map<string, number>()
  const [kafka] = await findProcesses((line) => line.includes(dataDir) && line.includes('kafka.Kafka'))
  // Redis renames its process to `redis-server host:port`.
  const [redis] = await findProcesses((line) => line.includes(`redis-server ${new URL(redisUrl).host}`))
  if (kafka !== undefined) pids.set('Kafka', kafka)
  if (redis !== undefined) pids.set('Redis', redis)
  return pids
}

/** CPU seconds so far of each named process. */
export async function infraCpuSeconds(pids: ReadonlyMap<string, number>): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  for (const [part, pid] of pids) out.set(part, await processCpuSeconds(pid))
  return out
}
