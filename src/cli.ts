/**
 * The `pipeline` command. Each subcommand exists because it works; `pipeline help` lists them.
 */
import { describeError } from './errors.ts'
import { runService } from './services/run-service.ts'

interface Command {
  readonly summary: string
  run(args: readonly string[]): Promise<number>
}

const commands: Record<string, Command> = {
  up: {
    summary: 'run the whole pipeline locally: Kafka, Redis, mocks, producer, consumer (npm start)',
    async run() {
      const { runLocalStack } = await import('./services/local-stack.ts')
      return runLocalStack(['mock-analytics', 'consumer', 'producer'])
    },
  },
  producer: {
    summary: 'poll CRM and Inventory and publish new or changed records to Kafka (metrics on :9001)',
    async run() {
      const { runProducerService } = await import('./services/producer/service.ts')
      return runService('producer', runProducerService)
    },
  },
  consumer: {
    summary: 'merge customers with products, deduplicate, deliver views to Analytics (metrics on :9000)',
    async run() {
      const { runConsumerService } = await import('./services/consumer/service.ts')
      return runService('consumer', runConsumerService)
    },
  },
  dlq: {
    summary:
      'inspect and replay the dead letter queue: dlq list | show <offset> | replay (`pipeline dlq help`)',
    async run(args) {
      const { runDlqCommand } = await import('./dlq/cli.ts')
      return runDlqCommand(args)
    },
  },
  'mock-analytics': {
    summary: 'serve the mock Analytics API (POST /analytics/data) on MOCK_ANALYTICS_PORT (4020)',
    async run() {
      const { runMockAnalyticsService } = await import('./services/mock-analytics/service.ts')
      return runService('mock-analytics', runMockAnalyticsService)
    },
  },
}

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((name) => name.length))
  const lines = Object.entries(commands).map(
    ([name, command]) => `  ${name.padEnd(width)}  ${command.summary}`,
  )
  return ['usage: pipeline <command> [options]', '', 'commands:', ...lines, ''].join('\n')
}

/** Runs the CLI with `argv` (without node and script) and resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(usage())
    return name === undefined ? 2 : 0
  }
  const command = commands[name]
  if (!command) {
    console.error(`pipeline: unknown command ${JSON.stringify(name)}; run \`pipeline help\` for the list`)
    return 2
  }
  try {
    return await command.run(rest)
  } catch (error) {
    console.error(`pipeline ${name}: ${describeError(error)}`)
    return 1
  }
}

process.exitCode = await main(process.argv.slice(2))
