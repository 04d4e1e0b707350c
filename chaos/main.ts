/**
 * `npm run chaos`: the full-size chaos run of issue #7 (flags in chaos/options.ts), its table on
 * stdout, exit code 0 when every end check passed, 1 when one failed, 2 on bad flags.
 */
import { join } from 'node:path'
import { describeError } from '../src/errors.ts'
import { cacheDir } from '../src/infra/paths.ts'
import { chaosOptionsFrom, chaosUsage } from './options.ts'
import { formatReport } from './report.ts'
import { runChaos } from './runner.ts'

const say = (line: string) => process.stdout.write(`chaos | ${line}\n`)
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  process.stdout.write(`${chaosUsage}\n`)
  process.exit(0)
}
let options: ReturnType<typeof chaosOptionsFrom>
try {
  options = chaosOptionsFrom(process.argv.slice(2), { runsDir: join(cacheDir, 'chaos-runs'), log: say })
} catch (error) {
  console.error(`chaos: ${describeError(error)}\n${chaosUsage}`)
  process.exit(2)
}
try {
  const result = await runChaos(options)
  process.stdout.write(`${formatReport(result.figures, result.problems)}\n`)
  for (const exit of result.unexpectedExits) say(`unexpected exit of ${exit.slot} (${exit.how})`)
  if (result.problems.length > 0) say(`logs kept in ${result.runDir}`)
  process.exit(result.problems.length === 0 ? 0 : 1)
} catch (error) {
  console.error(`chaos: ${describeError(error)}`)
  process.exit(1)
}
