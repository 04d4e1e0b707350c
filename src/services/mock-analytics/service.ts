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
  })
  logger.info(
    { url: mock.url, authentication: config.ANALYTICS_TOKEN !== undefined },
    `mock Analytics listening on ${mock.url} (POST ${mock.url}/analytics/data)`,
  )
  return mock
}
