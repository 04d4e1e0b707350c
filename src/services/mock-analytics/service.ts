/**
 * Composition root of `pipeline mock-analytics`: the mock Analytics service started from the
 * validated configuration.
 */
import type { Config } from '../../config/env.ts'
import type { Logger } from '../../observability/logger.ts'
import { startMockAnalytics } from './server.ts'

/**
 * Starts the mock on MOCK_ANALYTICS_HOST:MOCK_ANALYTICS_PORT. When ANALYTICS_TOKEN is set the mock
 * demands it as a bearer token, so a local stack sharing one environment exercises the sink's
 * authentication exactly as a real Analytics would.
 */
export async function runMockAnalyticsService(
  config: Config,
  logger: Logger,
): Promise<{ close(): Promise<void> }> {
  const mock = await startMockAnalytics({
    host: config.MOCK_ANALYTICS_HOST,
    port: config.MOCK_ANALYTICS_PORT,
    token: config.ANALYTICS_TOKEN,
    stateFile: config.MOCK_ANALYTICS_STATE_FILE,
  })
  const file = config.MOCK_ANALYTICS_STATE_FILE
  if (file !== undefined) {
    const { records, unreadable } = mock.restored
    logger.info({ file, records }, `read back ${records} accepted deliveries from ${file}`)
    if (unreadable > 0)
      logger.warn(
        { file, unreadable },
        `skipped ${unreadable} unreadable line(s) of ${file} (cut short by a crash?)`,
      )
  }
  logger.info(
    { url: mock.url, authentication: config.ANALYTICS_TOKEN !== undefined },
    `mock Analytics listening on ${mock.url} (POST ${mock.url}/analytics/data)`,
  )
  return mock
}
