/**
 * What a complete scan of a source means for Kafka (pure): which records are new or changed and
 * must be published, which are unchanged, and which known ids vanished and become tombstones —
 * unless so many vanished that the listing is more likely broken than the data deleted.
 */

/** A validated record of this scan, with its content hash. */
export interface ScannedRecord<T> {
  readonly id: string
  readonly hash: string
  readonly record: T
}

/** The plan for one cycle. */
export interface ChangePlan<T> {
  readonly upserts: readonly ScannedRecord<T>[]
  readonly unchanged: number
  readonly deletions: readonly string[]
  /** Set when the guard refused the deletions; they are then not in `deletions`. */
  readonly refusedDeletions: number
  /** Known ids listed with an invalid record: neither published nor deleted (see {@link PlanOptions.held}). */
  readonly held: number
}

/** Options of {@link planChanges}. */
export interface PlanOptions {
  /** Whether the scan saw the whole listing; only then can absence mean deletion. */
  readonly complete: boolean
  /** Largest share (0..1) of the known ids one cycle may delete. */
  readonly maxDeleteRatio: number
  /**
   * Ids the listing holds with a record that failed validation. They are listed, so not deleted: a
   * bad field at the source must not remove the customer from Analytics. Their last valid version
   * stays in place until a valid one replaces it (the invalid one is dead-lettered).
   */
  readonly held?: ReadonlySet<string>
}

/**
 * Compares a scan with the hashes last published per id.
 *
 * @param scanned the records of the scan (ids unique)
 * @param known id → content hash last acknowledged by Kafka
 */
export function planChanges<T>(
  scanned: readonly ScannedRecord<T>[],
  known: ReadonlyMap<string, string>,
  options: PlanOptions,
): ChangePlan<T> {
  const upserts: ScannedRecord<T>[] = []
  let unchanged = 0
  let stillListed = 0
  for (const item of scanned) {
    const hash = known.get(item.id)
    if (hash !== undefined) stillListed++
    if (hash === item.hash) unchanged++
    else upserts.push(item)
  }
  // With unique ids, every known id was listed when the counts match (the usual poll, and every
  // first sync): nothing vanished, nothing is held, and no set of 100k listed ids needs building.
  if (!options.complete || stillListed === known.size) {
    return { upserts, unchanged, deletions: [], refusedDeletions: 0, held: 0 }
  }
  const seen = new Set<string>()
  for (const item of scanned) seen.add(item.id)
  const listed = options.held ?? new Set<string>()
  let held = 0
  for (const id of listed) if (!seen.has(id) && known.has(id)) held++
  const vanished: string[] = []
  for (const id of known.keys()) if (!seen.has(id) && !listed.has(id)) vanished.push(id)
  if (vanished.length > 0 && vanished.length > options.maxDeleteRatio * known.size) {
    return { upserts, unchanged, deletions: [], refusedDeletions: vanished.length, held }
  }
  return { upserts, unchanged, deletions: vanished, refusedDeletions: 0, held }
}
