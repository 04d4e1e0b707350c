/**
 * Options of a chaos run and their command-line form (`npm run chaos -- --customers 2000 …`). Pure,
 * so parsing is testable without starting anything.
 */
import { parseArgs } from 'node:util'

/** The kinds of fault a run injects besides the process kills. */
export const faultKinds = [
  'kafka-restart',
  'redis-restart',
  'sink-outage',
  'sink-slow',
  'source-429',
  'source-503',
  'invalid-records',
  'poison',
] as const

/** One kind of injected fault. */
export type FaultKind = (typeof faultKinds)[number]

/** Everything a chaos run can be told. */
export interface ChaosOptions {
  readonly customers: number
  readonly products: number
  /** Seeds the data set, the mutations and the fault schedule: a run can be replayed. */
  readonly seed: number
  /** How long faults are injected (the drain to quiescence comes after). */
  readonly durationMs: number
  /** SIGKILLs of producers and consumers, spread over the duration. */
  readonly kills: number
  /** Fault kinds injected, each once (in a seeded order between the kills). */
  readonly faults: readonly FaultKind[]
  /** How long the sink is unreachable. */
  readonly sinkOutageMs: number
  /** How long the sink is slowed, and how long each source storm lasts. */
  readonly faultWindowMs: number
  /** Source changes per mutation tick (customers; products get a tenth, at least one). */
  readonly changesPerTick: number
  readonly tickMs: number
  readonly pollIntervalMs: number
  /** Bad records mixed into one source response, and poison messages produced, per injection. */
  readonly invalidRecords: number
  /** Longest wait for quiescence after the faults ended. */
  readonly drainTimeoutMs: number
  /** Where runs keep their data and logs (a fresh folder below it per run). */
  readonly runsDir: string
  /** Keep the run folder even when every check passed. */
  readonly keep: boolean
  /** Progress lines for a person watching. */
  readonly log: (line: string) => void
}

/** The full-size run of issue #7: 100k customers, 10k products. */
export const fullSizeDefaults = {
  customers: 100_000,
  products: 10_000,
  seed: 7,
  durationMs: 600_000,
  kills: 24,
  faults: faultKinds,
  sinkOutageMs: 60_000,
  faultWindowMs: 20_000,
  changesPerTick: 40,
  tickMs: 2000,
  pollIntervalMs: 10_000,
  invalidRecords: 3,
  drainTimeoutMs: 1_200_000,
  keep: false,
} as const satisfies Partial<ChaosOptions>

const numeric = {
  customers: 'customers',
  products: 'products',
  seed: 'seed',
  'duration-s': 'durationMs',
  kills: 'kills',
  'sink-outage-s': 'sinkOutageMs',
  'fault-window-s': 'faultWindowMs',
  'changes-per-tick': 'changesPerTick',
  'poll-interval-ms': 'pollIntervalMs',
  'drain-timeout-s': 'drainTimeoutMs',
} as const

/** Usage text of `npm run chaos`. */
export const chaosUsage = [
  'usage: npm run chaos -- [options]',
  '  --customers N          (default 100000)',
  '  --products N           (default 10000)',
  '  --seed N               (default 7)',
  '  --duration-s N         fault phase length (default 600)',
  '  --kills N              SIGKILLs of producers and consumers (default 24)',
  '  --sink-outage-s N      sink unreachable this long (default 60)',
  '  --fault-window-s N     slow sink and each source storm last this long (default 20)',
  '  --changes-per-tick N   customer changes every 2 s (default 40)',
  '  --poll-interval-ms N   producer poll interval (default 10000)',
  '  --drain-timeout-s N    longest wait for quiescence (default 1200)',
  `  --faults a,b,…         subset of ${faultKinds.join(',')} (default all)`,
  '  --keep                 keep .cache/chaos-runs/<run> even when the run passed',
].join('\n')

/**
 * Reads command-line flags over {@link fullSizeDefaults}.
 * @throws Error with one line naming the bad flag.
 */
export function chaosOptionsFrom(
  argv: readonly string[],
  base: { readonly runsDir: string; readonly log: (line: string) => void },
): ChaosOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      ...Object.fromEntries(Object.keys(numeric).map((flag) => [flag, { type: 'string' as const }])),
      faults: { type: 'string' },
      keep: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  })
  const options: Record<string, unknown> = { ...fullSizeDefaults, ...base }
  for (const [flag, field] of Object.entries(numeric)) {
    const raw = (values as Record<string, unknown>)[flag]
    if (typeof raw !== 'string') continue
    const value = Number(raw)
    if (!Number.isInteger(value) || value < 0)
      throw new Error(`--${flag}=${raw}: expected a whole number ≥ 0`)
    options[field] = flag.endsWith('-s') ? value * 1000 : value
  }
  if (typeof values.faults === 'string') {
    const wanted = values.faults.split(',').filter((name) => name !== '')
    const unknown = wanted.filter((name) => !(faultKinds as readonly string[]).includes(name))
    if (unknown.length > 0)
      throw new Error(`--faults: unknown ${unknown.join(', ')}; known: ${faultKinds.join(', ')}`)
    options.faults = wanted
  }
  if (values.keep === true) options.keep = true
  return options as unknown as ChaosOptions
}
