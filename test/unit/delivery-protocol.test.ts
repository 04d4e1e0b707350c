/**
 * The delivery protocol of stage 2 (decideDelivery, and the claim and settle rules the delivery
 * store's Redis scripts apply) against a model of Analytics, with two members delivering one view at
 * once (a rebalance), members that give up on requests Analytics stores late, members that freeze
 * past their claim, and members that die. The store's scripts are checked against the same rules on
 * a real Redis in test/integration/delivery-store.test.ts.
 *
 * Every change ticks the view clock, and an evaluation reads the clock with the state, as stage 2
 * reads it just before the state. An evaluation is two steps, as in stage 2: read and decide, then
 * claim (to send) or note (a skip); other members may act in between. Records compare byte for byte,
 * modelled by a version that every write of the record bumps.
 *
 * Assumptions, as in production: a request given up on lands within `LATE` of that moment; a member
 * that dies does so within its claim, less `LATE` (a member frozen past its claim that then dies with
 * a request still unlanded is outside them); a request a dead member consumed is read again only if
 * no other member read it after it. Once the sources stop changing and every request asked for is
 * evaluated, with every late request landing as late as it may, the sink must hold the current view,
 * and no key may ever carry two contents.
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
const CLAIM = 6
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
      /** The view clock its evaluation read, and the version of the record it read. */
      readonly seq: number
      readonly version: number
      /** What it decided: to skip, or to send this content under this key. */
      readonly send: { readonly key: string; readonly hash: string; readonly body: string } | undefined
      /** A re-send: until when the earlier attempt of the key may still land. */
      readonly inherited: number | undefined
    }
  | {
      phase: 'sent'
      readonly key: string
      readonly hash: string
      readonly flight: Flight
      readonly claimedAt: number
      /** The record's version right after its claim: a settlement recognises its own record. */
      readonly claimVersion: number
      readonly inherited: number | undefined
    }

type Step = { kind: string; who: number; value: number; bit: boolean }

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

/** Plays `steps`, then lets the system settle; returns what the sink holds and what it should. */
function play(steps: readonly Step[]): { held: string | undefined; expected: string | undefined } {
  let now = 0
  let current: ViewPayload | undefined = CONTENTS[1]
  /** The view clock: every change ticks it; an evaluation reads it with the state. */
  let clock = 1
  let record: DeliveryRecord | undefined
  let version = 0
  /** The clock of the latest claiming or skipping evaluation. */
  let evaluated = 0
  /** Whether an evaluation of the view is asked for (a refresh or a retry-schedule entry). */
  let pending = true
  /** The member that read the request last. */
  let lastReader = -1
  const sinkKeys = new Map<string, string>()
  let held: string | undefined
  const flights: Flight[] = []
  const members: Member[] = [{ phase: 'idle' }, { phase: 'idle' }]

  const write = (next: DeliveryRecord) => {
    record = next
    version += 1
  }
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
  // The delivery store's rules (its Lua scripts).
  const settle = (next: DeliveryRecord, claimVersion: number): boolean => {
    if (record === undefined || version === claimVersion) {
      write(next)
      return true
    }
    if (record.key === next.key) {
      // Touched by another member: keep its doubt, and its window unless this is a 2xx.
      const keep = record.doubt === true || next.mayLandUntil !== undefined
      const until = Math.max(next.mayLandUntil ?? 0, keep ? (record.mayLandUntil ?? 0) : 0)
      write({
        ...next,
        ...(record.doubt ? { doubt: true } : {}),
        ...(until > 0 ? { mayLandUntil: until } : {}),
      })
      return true
    }
    const late = next.mayLandUntil
    const until = late !== undefined && (record.mayLandUntil ?? 0) < late ? late : record.mayLandUntil
    write({ ...record, doubt: true, ...(until === undefined ? {} : { mayLandUntil: until }) })
    return false
  }
  const decide = (i: number): void => {
    pending = false
    lastReader = i
    const decision = decideDelivery(VIEW, current, record, now)
    if (decision.action === 'wait') {
      pending = true
      return
    }
    const send =
      decision.action === 'deliver'
        ? { key: decision.key, hash: decision.hash, body: decision.json }
        : undefined
    const inherited = decision.action === 'deliver' && decision.resend ? record?.mayLandUntil : undefined
    members[i] = { phase: 'decided', seq: clock, version, send, inherited }
  }
  /** The step after deciding: claim and POST, or note the skip. */
  const act = (i: number, landsLate: boolean): void => {
    const m = members[i]
    if (m?.phase !== 'decided') return
    members[i] = { phase: 'idle' }
    if (m.version !== version || (m.send !== undefined && evaluated > m.seq)) {
      pending = true
      return
    }
    evaluated = Math.max(evaluated, m.seq)
    if (m.send === undefined) return
    const { key, hash, body } = m.send
    write({ key, hash, confirmed: false, mayLandUntil: now + CLAIM })
    const flight: Flight = { key, body, landBy: undefined, landsLate, landed: false }
    flights.push(flight)
    members[i] = {
      phase: 'sent',
      key,
      hash,
      flight,
      claimedAt: now,
      claimVersion: version,
      inherited: m.inherited,
    }
  }
  const answer = (i: number): void => {
    const m = members[i]
    if (m?.phase !== 'sent' || !m.flight.landed) return
    if (!settle({ key: m.key, hash: m.hash, confirmed: true }, m.claimVersion)) pending = true
    members[i] = { phase: 'idle' }
  }
  const giveUp = (i: number): void => {
    const m = members[i]
    if (m?.phase !== 'sent') return
    m.flight.landBy = now + LATE
    const until = Math.max(now + LATE, m.inherited ?? 0)
    settle({ key: m.key, hash: m.hash, confirmed: false, mayLandUntil: until }, m.claimVersion)
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
    else if (kind === 'claim') act(who, bit)
    else if (kind === 'land') {
      // Any request still on its way may land now, before its deadline.
      const open = flights.filter((f) => !f.landed && (f.landBy === undefined || now < f.landBy))
      const flight = open[value % Math.max(1, open.length)]
      if (flight !== undefined) land(flight)
    } else if (kind === 'answer') answer(who)
    else if (kind === 'give-up') giveUp(who)
    else if (kind === 'die') {
      // Its requests land within its claim at the latest; what it read is read again unless
      // another member read it since.
      if (m?.phase === 'sent' && now + LATE <= m.claimedAt + CLAIM) m.flight.landBy = m.claimedAt + CLAIM
      else if (m?.phase !== 'decided') continue
      members[who] = { phase: 'idle' }
      if (lastReader === who) pending = true
    }
  }
  // The sources stop changing; members still at work finish: those waiting for an answer get it,
  // or give up.
  for (let i = 0; i < members.length; i++) {
    act(i, true)
    const m = members[i]
    if (m?.phase === 'sent') m.flight.landed ? answer(i) : giveUp(i)
  }
  // One member evaluates whatever is asked for; requests still on their way land as late as they
  // may, and nothing asks for an evaluation when one lands.
  for (let rounds = 0; ; rounds++) {
    assert.ok(rounds < 50, 'the view settles')
    if (pending) {
      decide(0)
      if (pending && record?.mayLandUntil !== undefined) advance(record.mayLandUntil)
      act(0, true)
      const m = members[0]
      if (m?.phase === 'sent') {
        land(m.flight)
        answer(0)
      }
      continue
    }
    const late = flights.filter((f) => !f.landed && f.landsLate && f.landBy !== undefined)
    if (late.length === 0) break
    advance(Math.min(...late.map((f) => f.landBy as number)))
  }
  return { held, expected: current === undefined ? undefined : viewJson(current) }
}

const KINDS: Record<string, string> = {
  d: 'decide',
  c: 'claim',
  l: 'land',
  a: 'answer',
  g: 'give-up',
  k: 'die',
  f: 'freeze',
  t: 'tick',
  x: 'change',
}

/**
 * Steps written short: `d0` member 0 decides, `x0:2` the view changes to content 2, `l1:1` the second
 * open request lands; a trailing `!` loses the step's request if it has not landed by its deadline.
 */
const steps = (script: string): Step[] =>
  script.split(' ').map((token) => {
    const lost = token.endsWith('!')
    const [head = '', value = '0'] = (lost ? token.slice(0, -1) : token).split(':')
    return {
      kind: KINDS[head.charAt(0)] ?? head,
      who: Number(head.slice(1)),
      value: Number(value),
      bit: !lost,
    }
  })

/** Interleavings that broke earlier versions of the rules (each fails if its rule is taken out). */
const KNOWN = {
  "a member frozen past its claim lands its older view after the next owner's newer one": steps(
    'd0 c0 f0 x0:2 d1 c1 l1:1 a1 l0:0 a0',
  ),
  "a settlement keeps the late window another member's give-up left": steps('d0 c0 f0 x0:2 d1 c1 g0 l1:1 a1'),
  'a skip does not stand when a claim came between its read and its note': steps(
    'd0 c0 l0 a0 x0:2 d0 x0:1 d1 c0 c1 l0 a0',
  ),
  "a give-up keeps the window of another member's re-send of the same key": steps(
    'd0 c0! d1 c1 g0 k1 x0:2 d0 t0:1 d0 c0 l0:1 a0',
  ),
  'giving up on a re-send keeps the wait for the dead sender of the same key': steps('d0 c0 k0 d0 x0:0 c0!'),
  'a re-send renewing its claim keeps another member from claiming other content': steps(
    'd0 c0 g0 f0 d0 x0:2 d1 c0 c1 l1:1 k0 a1',
  ),
}

for (const [name, known] of Object.entries(KNOWN)) {
  test(`delivery protocol: ${name}`, () => {
    const { held, expected } = play(known)
    assert.equal(held, expected, 'the sink holds the current view')
  })
}

test('property: overlapping members, late landings, freezes and deaths: the sink ends holding the current view', () => {
  fc.assert(
    fc.property(fc.array(step, { maxLength: 24 }), (list) => {
      const { held, expected } = play(list)
      assert.equal(held, expected, 'the sink holds the current view')
    }),
    { numRuns: 60_000, examples: Object.values(KNOWN).map((known) => [known]) },
  )
})
