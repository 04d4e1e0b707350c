/**
 * The delivery protocol of stage 2 (decideDelivery, and the claim and settle rules the delivery
 * store's Redis scripts apply) against a model of Analytics, with two members delivering one view at
 * once (a rebalance), members that give up on requests Analytics stores late, members that freeze
 * past their claim, and members that die. The store's scripts are checked against the same rules on
 * a real Redis in test/integration/delivery-store.test.ts.
 *
 * Every change ticks the view clock, and an evaluation reads the clock with the state, as stage 2
 * reads it just before the state.
 *
 * Assumptions, as in production: a request given up on lands within `LATE` of that moment; a member
 * that dies does so within its claim, less `LATE` (a member frozen past its claim that then dies with
 * a request still unlanded is outside them). Once the sources stop changing and every request asked
 * for is evaluated, the sink must hold the current view, and no key may ever carry two contents.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import {
  type DeliveryRecord,
  decideDelivery,
  type ProductViewInputs,
  productView,
  type ViewPayload,
  viewJson,
} from '../../src/domain/views.ts'

const VIEW = 'product:7' as const
const CLAIM = 4
const LATE = 2

const inputs = (customerIds: string[]): ProductViewInputs => ({
  type: 'product',
  id: '7',
  product: {
    data: { id: '7', sku: 'S', name: 'P', price: 1, stock: 1, updatedAt: 'u' },
    contentHash: 'h',
    polledAt: 'p',
  },
  customerCount: customerIds.length,
  customerIds,
})
const CONTENTS: ReadonlyArray<ViewPayload | undefined> = [
  undefined,
  productView(inputs(['1'])),
  productView(inputs(['1', '2'])),
  productView(inputs(['3'])),
]

/** A request on its way to Analytics. */
interface Flight {
  readonly key: string
  readonly body: string
  /** Lands by then at the latest (undefined: its member still waits for the answer). */
  landBy: number | undefined
  /** If its deadline passes unlanded: true lands it then, false loses it. */
  readonly landsLate: boolean
  landed: boolean
}

/** A stage-2 member working on the view. */
type Member =
  | { phase: 'idle' }
  | {
      phase: 'decided'
      /** The view clock its evaluation read. */
      readonly seq: number
      readonly previousKey: string
      readonly key: string
      readonly hash: string
      readonly body: string
    }
  | {
      phase: 'sent'
      readonly key: string
      readonly hash: string
      readonly flight: Flight
      readonly claimedAt: number
    }

const step = fc.record({
  // Weighted towards the steps of a delivery, so short runs interleave two of them often.
  kind: fc.constantFrom(
    'change',
    'tick',
    'decide',
    'decide',
    'claim',
    'claim',
    'land',
    'land',
    'answer',
    'give-up',
    'die',
    'freeze',
  ),
  who: fc.integer({ min: 0, max: 1 }),
  value: fc.integer({ min: 0, max: 3 }),
  bit: fc.boolean(),
})

test('property: overlapping members, late landings, freezes and deaths: the sink ends holding the current view', () => {
  fc.assert(
    fc.property(fc.array(step, { maxLength: 24 }), (steps) => {
      let now = 0
      let current: ViewPayload | undefined = CONTENTS[1]
      /** The view clock: every change ticks it; an evaluation reads it with the state. */
      let clock = 1
      let record: DeliveryRecord | undefined
      /** The clock of the latest claiming or skipping evaluation. */
      let evaluated = 0
      /** Whether an evaluation of the view is asked for (a refresh or a retry-schedule entry). */
      let pending = true
      const sinkKeys = new Map<string, string>()
      let held: string | undefined
      const flights: Flight[] = []
      const members: Member[] = [{ phase: 'idle' }, { phase: 'idle' }]

      const land = (flight: Flight) => {
        if (flight.landed) return
        flight.landed = true
        const seen = sinkKeys.get(flight.key)
        if (seen !== undefined) return assert.equal(seen, flight.body, 'a key carried two contents')
        sinkKeys.set(flight.key, flight.body)
        held = flight.body.includes('"deleted":true') ? undefined : flight.body
      }
      const advance = (to: number) => {
        for (const flight of flights)
          if (!flight.landed && flight.landBy !== undefined && flight.landBy <= to && flight.landsLate)
            land(flight)
        now = Math.max(now, to)
      }
      // The delivery store's rules (its Lua scripts): compare-and-set on the record's key.
      const claim = (seq: number, previousKey: string, next: DeliveryRecord): boolean => {
        if ((record?.key ?? '') !== previousKey || evaluated > seq) return false
        record = next
        evaluated = seq
        return true
      }
      const settle = (next: DeliveryRecord): boolean => {
        if (record === undefined || record.key === next.key) {
          record = record?.doubt ? { ...next, doubt: true } : next
          return true
        }
        const late = next.mayLandUntil
        const until = late !== undefined && (record.mayLandUntil ?? 0) < late ? late : record.mayLandUntil
        record = { ...record, doubt: true, ...(until === undefined ? {} : { mayLandUntil: until }) }
        return false
      }
      const decide = (i: number): void => {
        pending = false
        const decision = decideDelivery(VIEW, current, record, now)
        if (decision.action === 'skip') {
          evaluated = Math.max(evaluated, clock)
          return
        }
        if (decision.action === 'wait') {
          pending = true
          return
        }
        members[i] = {
          phase: 'decided',
          seq: clock,
          previousKey: record?.key ?? '',
          key: decision.key,
          hash: decision.hash,
          body: decision.json,
        }
      }
      const send = (i: number, landsLate: boolean): void => {
        const m = members[i]
        if (m?.phase !== 'decided') return
        const claimed = claim(m.seq, m.previousKey, {
          key: m.key,
          hash: m.hash,
          confirmed: false,
          mayLandUntil: now + CLAIM,
        })
        if (!claimed) {
          members[i] = { phase: 'idle' }
          pending = true
          return
        }
        const flight: Flight = { key: m.key, body: m.body, landBy: undefined, landsLate, landed: false }
        flights.push(flight)
        members[i] = { phase: 'sent', key: m.key, hash: m.hash, flight, claimedAt: now }
      }
      const answer = (i: number): void => {
        const m = members[i]
        if (m?.phase !== 'sent' || !m.flight.landed) return
        if (!settle({ key: m.key, hash: m.hash, confirmed: true })) pending = true
        members[i] = { phase: 'idle' }
      }
      const giveUp = (i: number): void => {
        const m = members[i]
        if (m?.phase !== 'sent') return
        m.flight.landBy = now + LATE
        settle({ key: m.key, hash: m.hash, confirmed: false, mayLandUntil: now + LATE })
        pending = true
        members[i] = { phase: 'idle' }
      }

      for (const { kind, who, value, bit } of steps) {
        const m = members[who]
        if (kind === 'change') {
          current = CONTENTS[value]
          clock += 1
          pending = true
        } else if (kind === 'tick') advance(now + 1 + value)
        // Time enough for every claim made so far to run out: a member frozen mid-delivery.
        else if (kind === 'freeze') advance(now + CLAIM + 1)
        else if (kind === 'decide' && m?.phase === 'idle') decide(who)
        else if (kind === 'claim') send(who, bit)
        else if (kind === 'land') {
          // Any request still on its way may land now, up to its deadline.
          const open = flights.filter((f) => !f.landed && (f.landBy === undefined || now <= f.landBy))
          const flight = open[value % Math.max(1, open.length)]
          if (flight !== undefined) land(flight)
        } else if (kind === 'answer') answer(who)
        else if (kind === 'give-up') giveUp(who)
        else if (kind === 'die' && m?.phase !== 'idle') {
          // Its requests land within its claim at the latest; the message it held is read again.
          if (m?.phase === 'sent' && now + LATE <= m.claimedAt + CLAIM) {
            m.flight.landBy = m.claimedAt + CLAIM
            members[who] = { phase: 'idle' }
            pending = true
          } else if (m?.phase === 'decided') {
            members[who] = { phase: 'idle' }
            pending = true
          }
        }
      }
      // The sources stop changing; members still waiting for an answer get it, or give up.
      for (let i = 0; i < members.length; i++) {
        if (members[i]?.phase === 'decided') send(i, true)
        const m = members[i]
        if (m?.phase === 'sent') m.flight.landed ? answer(i) : giveUp(i)
      }
      advance(now + CLAIM + LATE + 1)
      // One member evaluates what is asked for, everything landing at once, until nothing is.
      let rounds = 0
      while (pending) {
        assert.ok(++rounds < 20, 'the view settles')
        decide(0)
        if (pending && record?.mayLandUntil !== undefined) advance(record.mayLandUntil + 1)
        send(0, true)
        const m = members[0]
        if (m?.phase === 'sent') {
          land(m.flight)
          answer(0)
        }
      }
      assert.equal(
        held,
        current === undefined ? undefined : viewJson(current),
        'the sink holds the current view',
      )
    }),
    {
      numRuns: 30_000,
      examples: [
        // A member frozen past its claim lands its older view after the next owner's newer one.
        [
          [
            { kind: 'decide', who: 0, value: 0, bit: true },
            { kind: 'claim', who: 0, value: 0, bit: true },
            { kind: 'freeze', who: 0, value: 0, bit: true },
            { kind: 'change', who: 0, value: 2, bit: true },
            { kind: 'decide', who: 1, value: 0, bit: true },
            { kind: 'claim', who: 1, value: 0, bit: true },
            { kind: 'land', who: 1, value: 1, bit: true },
            { kind: 'answer', who: 1, value: 0, bit: true },
            { kind: 'land', who: 0, value: 0, bit: true },
            { kind: 'answer', who: 0, value: 0, bit: true },
          ],
        ],
      ],
    },
  )
})
