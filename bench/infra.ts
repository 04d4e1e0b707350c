/**
 * The Kafka and Redis a consumer benchmark runs against: started on free ports (no Prism) in a run
 * directory of its own under `.cache/bench-runs/`, stopped afterwards. The directory goes when the run
 * succeeded (unless `BENCH_KEEP_LOGS` is set) and stays when it failed: its logs explain the failure.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { cacheDir } from '../src/infra/paths.ts'
import { type LocalInfra, startLocalInfra } from '../src/infra/stack.ts'

/** Runs `run` against fresh local infrastructure in a run directory named after `name`. */
export async function withBenchInfra<T>(
  name: string,
  run: (infra: LocalInfra, runDir: string) => Promise<T>,
): Promise<T> {
  const runs = join(cacheDir, 'bench-runs')
  mkdirSync(runs, { recursive: true })
  const runDir = mkdtempSync(join(runs, `${name}-`))
  let infra: LocalInfra | undefined
  let failed = true
  try {
    infra = await startLocalInfra({
      dataDir: runDir,
      ports: { kafka: 0, redis: 0 },
      prism: false,
      log: (line) => process.stderr.write(`[infra] ${line}\n`),
    })
    const result = await run(infra, runDir)
    failed = false
    return result
  } finally {
    await infra?.stop()
    if (failed) process.stderr.write(`logs kept in ${runDir}\n`)
    else if (!process.env.BENCH_KEEP_LOGS) rmSync(runDir, { recursive: true, force: true })
  }
}
