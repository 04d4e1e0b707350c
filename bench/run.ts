/**
 * `npm run bench [name…]`: runs the benchmarks (`bench/<name>.bench.ts`), one after the other so
 * they do not compete for this machine's cores, each printing its own figures.
 */
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const all = readdirSync(here)
  .filter((file) => file.endsWith('.bench.ts'))
  .map((file) => file.replace(/\.bench\.ts$/, ''))
  .sort()
const wanted = process.argv.slice(2)
const unknown = wanted.filter((name) => !all.includes(name))
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; available: ${all.join(', ')}`)
  process.exit(2)
}
let failed = 0
for (const name of wanted.length > 0 ? wanted : all) {
  process.stdout.write(`\n=== ${name} ===\n`)
  const result = spawnSync(process.execPath, [join(here, `${name}.bench.ts`)], { stdio: 'inherit' })
  if (result.status !== 0) failed++
}
process.exit(failed > 0 ? 1 : 0)
