/**
 * A small seeded pseudo-random generator. The simulator must be reproducible from a seed (a failing
 * chaos run can be replayed), and `Math.random` cannot be seeded.
 */

/** Deterministic random numbers from a 32-bit seed (mulberry32: tiny, fast, good enough for test data). */
export class Random {
  #state: number

  constructor(seed: number) {
    // Mixing the seed keeps nearby seeds (1, 2, 3…) from giving visibly similar first draws.
    this.#state = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) >>> 0
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0
    let t = this.#state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** An integer in [min, max], both inclusive. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1))
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)]
    if (item === undefined) throw new RangeError('pick() needs a non-empty array')
    return item
  }

  /**
   * `count` distinct indices below `size`, in random order (partial Fisher–Yates, so asking for most
   * of a large collection costs no more than asking for a few).
   */
  sampleIndices(size: number, count: number): number[] {
    const n = Math.min(count, size)
    const pool = new Int32Array(size)
    for (let i = 0; i < size; i++) pool[i] = i
    const out: number[] = new Array(n)
    for (let i = 0; i < n; i++) {
      const j = i + Math.floor(this.next() * (size - i))
      const chosen = pool[j] as number
      pool[j] = pool[i] as number
      pool[i] = chosen
      out[i] = chosen
    }
    return out
  }
}
