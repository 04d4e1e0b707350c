/** The table a chaos run prints (pure). */

/** What a chaos run counted: every figure of the report. */
export interface ChaosFigures {
  readonly customers: number
  readonly products: number
  readonly seed: number
  /** SIGKILLs confirmed by the child's exit signal, per role. */
  readonly kills: { readonly producer: number; readonly consumer: number }
  /** Exits of services nobody asked for (restarted, listed as findings). */
  readonly unexpectedExits: number
  readonly outages: {
    readonly kafkaRestarts: number
    readonly redisRestarts: number
    readonly sinkOutages: number
    readonly sinkOutageMs: number
    /** Deliveries the mock delayed (some past the client's timeout). */
    readonly sinkDelayed: number
    readonly source429: number
    readonly source503: number
  }
  /** Source changes the simulator made (changed, created, deleted records). */
  readonly sourceChanges: number
  /** Messages on the source topics, and refresh requests between the consumer stages. */
  readonly sourceMessages: number
  readonly refreshMessages: number
  readonly viewsHeld: number
  readonly deliveries: {
    readonly received: number
    readonly accepted: number
    /** Re-sent keys the sink recognised and did not apply again. */
    readonly replays: number
    readonly rejected: number
  }
  readonly dlq: { readonly byCause: Readonly<Record<string, number>>; readonly repeats: number }
  readonly injected: { readonly invalidRecords: number; readonly poison: number }
  readonly wallMs: { readonly total: number; readonly faults: number; readonly drain: number }
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`

/** The report as aligned `name | value` lines, with the verdict last. */
export function formatReport(figures: ChaosFigures, problems: readonly string[]): string {
  const o = figures.outages
  const rows: Array<[string, string]> = [
    ['data set', `${figures.customers} customers, ${figures.products} products, seed ${figures.seed}`],
    [
      'kills survived (SIGKILL)',
      `${figures.kills.producer + figures.kills.consumer} (producers ${figures.kills.producer}, consumers ${figures.kills.consumer})`,
    ],
    ['unexpected service exits', String(figures.unexpectedExits)],
    [
      'outages survived',
      `Kafka restart ${o.kafkaRestarts}, Redis restart ${o.redisRestarts}, sink down ${o.sinkOutages}× (${seconds(o.sinkOutageMs)}), sink slowed (${o.sinkDelayed} deliveries delayed)`,
    ],
    ['source storms', `429 answered ${o.source429}×, 503 answered ${o.source503}×`],
    ['source changes made', String(figures.sourceChanges)],
    [
      'records moved',
      `${figures.sourceMessages} source messages, ${figures.refreshMessages} refresh requests`,
    ],
    [
      'deliveries',
      `${figures.deliveries.received} POSTed, ${figures.deliveries.accepted} accepted, ${figures.deliveries.rejected} refused by faults`,
    ],
    ['duplicate POSTs (deduped by key)', String(figures.deliveries.replays)],
    ['views held at the end', String(figures.viewsHeld)],
    [
      'DLQ entries by cause',
      Object.entries(figures.dlq.byCause)
        .map(([cause, n]) => `${cause} ${n}`)
        .join(', ') || 'none',
    ],
    ['DLQ repeats of one failure', String(figures.dlq.repeats)],
    [
      'injected on purpose',
      `${figures.injected.invalidRecords} invalid source records, ${figures.injected.poison} poison messages`,
    ],
    [
      'wall time',
      `${seconds(figures.wallMs.total)} (faults ${seconds(figures.wallMs.faults)}, drain to quiescence ${seconds(figures.wallMs.drain)})`,
    ],
    ['verdict', problems.length === 0 ? 'PASS: exact join, no key accepted twice, DLQ as injected' : 'FAIL'],
  ]
  const width = Math.max(...rows.map(([name]) => name.length))
  const lines = rows.map(([name, value]) => `${name.padEnd(width)} | ${value}`)
  const rule = '-'.repeat(Math.min(100, width + 60))
  return [rule, ...lines, rule, ...problems.map((p) => `problem: ${p}`)].join('\n')
}
