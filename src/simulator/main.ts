/**
 * Runs the source simulator as its own process (for benchmarks, so serving does not share an event
 * loop with the code under test). Prints its URL as one line on stdout, then serves until SIGINT/SIGTERM.
 */
import { simulatorOptionsFrom, simulatorUsage } from './options.ts'
import { startSourceSimulator } from './server.ts'

async function main(): Promise<void> {
  let options: ReturnType<typeof simulatorOptionsFrom>
  try {
    options = simulatorOptionsFrom(process.argv.slice(2), process.env)
  } catch (error) {
    console.error(`simulator: ${error instanceof Error ? error.message : String(error)}\n${simulatorUsage}`)
    process.exit(2)
  }
  const simulator = await startSourceSimulator(options).catch((error: unknown) => {
    console.error(`simulator: cannot start: ${error instanceof Error ? error.message : String(error)}`)
    process.exit(1)
  })
  process.stdout.write(`${simulator.url}\n`)
  const stop = () => {
    simulator.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`simulator: close failed: ${String(error)}`)
        process.exit(1)
      },
    )
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

await main()
