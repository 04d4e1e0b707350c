/**
 * The fault schedule of a chaos run (pure): which kill or fault happens in which order, drawn from the
 * run's seed so a failing run can be replayed. The runner carries the steps out one after another,
 * spaced so that they fill the fault phase.
 */
import { Random } from '../src/simulator/random.ts'
import type { FaultKind } from './options.ts'

/** A service role the runner kills. */
export type Role = 'producer' | 'consumer'

/** One step of the schedule. */
export type ChaosStep =
  | { readonly kind: 'kill'; readonly role: Role; readonly downMs: number }
  | { readonly kind: FaultKind }

/** How many processes of each role run: one producer pair, three consumers (issue #7). */
export const replicas: Readonly<Record<Role, number>> = { producer: 2, consumer: 3 }

/**
 * The steps of a run: `kills` SIGKILLs (roughly a third of them producers, the rest consumers,
 * each followed by a random pause before the restart) and every fault kind once, in a seeded order.
 * The sink outage never comes first, so it hits a pipeline with work in flight.
 */
export function buildSchedule(seed: number, kills: number, faults: readonly FaultKind[]): ChaosStep[] {
  const random = new Random(seed ^ 0x5eed)
  const steps: ChaosStep[] = []
  for (let i = 0; i < kills; i++) {
    const role: Role = i % 3 === 0 ? 'producer' : 'consumer'
    steps.push({ kind: 'kill', role, downMs: random.int(0, 3000) })
  }
  for (const kind of faults) steps.push({ kind })
  // Fisher–Yates with the seeded generator.
  for (let i = steps.length - 1; i > 0; i--) {
    const j = random.int(0, i)
    const a = steps[i] as ChaosStep
    steps[i] = steps[j] as ChaosStep
    steps[j] = a
  }
  const outage = steps.findIndex((step) => step.kind === 'sink-outage')
  if (outage === 0 && steps.length > 1) steps.push(...steps.splice(0, 1))
  return steps
}

/** A one-line description of a step, for the progress log. */
export function describeStep(step: ChaosStep): string {
  return step.kind === 'kill' ? `SIGKILL a ${step.role} (restart after ${step.downMs} ms)` : step.kind
}
