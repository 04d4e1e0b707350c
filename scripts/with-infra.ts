/**
 * The integration-test set-up: starts real Kafka, Redis and Prism on free ports (or uses
 * KAFKA_BROKERS / REDIS_URL when set), runs the given command with them in its environment, then
 * stops everything, whatever way the command ends.
 *
 * Usage: node scripts/with-infra.ts <command> [args...]
 */
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { describeError } from '../src/errors.ts'
import { cacheDir } from '../src/infra/paths.ts'
import { startLocalInfra } from '../src/infra/stack.ts'

const [command, ...args] = process.argv.slice(2)
if (!command) {
  console.error('usage: node scripts/with-infra.ts <command> [args...]')
  process.exit(2)
}

const runs = join(cacheDir, 'test-runs')
mkdirSync(runs, { recursive: true })
const dataDir = mkdtempSync(join(runs, 'run-'))
const log = (line: string) => process.stderr.write(`[infra] ${line}\n`)

let infra: Awaited<ReturnType<typeof startLocalInfra>>
const started = Date.now()
try {
  infra = await startLocalInfra({ dataDir, ports: { kafka: 0, redis: 0, prism: 0 }, log })
} catch (error) {
  console.error(`[infra] ${describeError(error)}`)
  process.exit(1)
}
log(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${JSON.stringify(infra.env)}`)

const child = spawn(command, args, { stdio: 'inherit', env: { ...process.env, ...infra.env } })
let stopping = false
const forward = (signal: NodeJS.Signals) => {
  stopping = true
  child.kill(signal)
}
process.on('SIGINT', forward)
process.on('SIGTERM', forward)
const code = await new Promise<number>((resolve) => {
  child.once('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0)))
  child.once('error', (error) => {
    console.error(`[infra] could not run ${command}: ${error.message}`)
    resolve(127)
  })
})
await infra.stop()
// Keep the logs of a failed run for inspection; a green run leaves nothing behind.
if (code === 0 && !stopping) rmSync(dataDir, { recursive: true, force: true })
else log(`logs kept in ${dataDir}`)
process.exit(code)
