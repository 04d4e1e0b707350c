/**
 * Checks of what the in-process analytics mock ends up holding against the reference model
 * (expected-views.ts): waiting for the join, and asserting quiescence.
 */
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import type { MockAnalytics } from '../../src/services/mock-analytics/server.ts'
import type { MockAnalyticsStats } from '../../src/services/mock-analytics/store.ts'
import { heldViews } from './consumer.ts'
import { type ViewFacts, viewDifferences } from './expected-views.ts'
import type { KeyLedger } from './key-ledger.ts'
import { waitFor } from './wait.ts'

/** Options of {@link waitForJoin}. */
export interface JoinWait {
  readonly timeoutMs?: number
  /** Compare only the views it accepts (tests sharing one mock). */
  readonly only?: (viewId: string) => boolean
  /** Appended to the failure message (e.g. the consumers' last log lines). */
  readonly context?: () => string
}

/**
 * Waits until the mock holds exactly `expected` and returns its views; on timeout, fails listing
 * every difference.
 */
export async function waitForJoin(
  mock: MockAnalytics,
  expected: ReadonlyMap<string, ViewFacts>,
  options: JoinWait = {},
): Promise<Record<string, Record<string, unknown>>> {
  let problems: string[] = []
  try {
    return await waitFor(
      'the views to match the join of the final source state',
      async () => {
        const held = await heldViews(mock)
        problems = viewDifferences(held, expected, options.only)
        return problems.length === 0 ? held : undefined
      },
      options.timeoutMs ?? 30_000,
    )
  } catch (error) {
    assert.fail(`${(error as Error).message}:\n${problems.join('\n')}\n${options.context?.() ?? ''}`)
  }
}

/**
 * Once the join is held: nothing more is POSTed for `quietMs`, the views are still the join, no key
 * carried two contents, every accepted key is distinct and nothing was rejected. Returns the stats.
 */
export async function assertQuiescent(
  mock: MockAnalytics,
  expected: ReadonlyMap<string, ViewFacts>,
  ledger: KeyLedger,
  quietMs = 1500,
): Promise<MockAnalyticsStats> {
  const before = mock.store.stats()
  await sleep(quietMs)
  const stats = mock.store.stats()
  assert.equal(stats.received, before.received, 'nothing POSTed after quiescence')
  assert.deepEqual(viewDifferences(await heldViews(mock), expected), [], 'still exactly the join')
  assert.deepEqual(ledger.conflicts, [], 'no key re-sent with other content')
  assert.equal(stats.accepted, stats.distinctKeys, 'every accepted key distinct')
  assert.equal(ledger.keys(), stats.distinctKeys, 'every key received was accepted, once')
  assert.equal(stats.received, stats.accepted + stats.replays, 'nothing rejected')
  return stats
}
