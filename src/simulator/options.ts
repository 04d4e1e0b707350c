/**
 * Options of the stand-alone simulator process (`src/simulator/main.ts`) from argv and environment,
 * argv winning. Pure, so the parsing is testable without starting a process.
 */
import { parseArgs } from 'node:util'
import { z } from 'zod'
import { describeIssues } from './control.ts'
import { pagingStyles } from './paging.ts'
import type { SourceSimulatorOptions } from './server.ts'

/** Each option: its flag, the environment variable that backs it, and its schema. */
const spec = {
  host: { env: 'SIM_HOST', schema: z.string().min(1) },
  port: { env: 'SIM_PORT', schema: z.coerce.number().int().min(0).max(65535) },
  customers: { env: 'SIM_CUSTOMERS', schema: z.coerce.number().int().min(0) },
  products: { env: 'SIM_PRODUCTS', schema: z.coerce.number().int().min(0) },
  seed: { env: 'SIM_SEED', schema: z.coerce.number().int() },
  'page-size': { env: 'SIM_PAGE_SIZE', schema: z.coerce.number().int().min(1) },
  'max-page-size': { env: 'SIM_MAX_PAGE_SIZE', schema: z.coerce.number().int().min(1) },
  paging: { env: 'SIM_PAGING', schema: z.enum(pagingStyles) },
  'customers-paging': { env: 'SIM_CUSTOMERS_PAGING', schema: z.enum(pagingStyles) },
  'products-paging': { env: 'SIM_PRODUCTS_PAGING', schema: z.enum(pagingStyles) },
  'next-links': { env: 'SIM_NEXT_LINKS', schema: z.enum(['relative', 'absolute']) },
  token: { env: 'SIM_TOKEN', schema: z.string().min(1) },
  'numeric-id-share': { env: 'SIM_NUMERIC_ID_SHARE', schema: z.coerce.number().min(0).max(1) },
} as const

type Flag = keyof typeof spec
type Values = { [F in Flag]?: z.output<(typeof spec)[F]['schema']> }

/** Usage text naming every flag and its variable. */
export const simulatorUsage = `usage: node src/simulator/main.ts [options]\n${Object.entries(spec)
  .map(([flag, { env }]) => `  --${flag} (env ${env})`)
  .join('\n')}`

/**
 * Reads the options.
 * @throws Error with one line naming the flag or variable and what was wrong.
 */
export function simulatorOptionsFrom(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): SourceSimulatorOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: Object.fromEntries(Object.keys(spec).map((flag) => [flag, { type: 'string' as const }])),
    strict: true,
    allowPositionals: false,
  })
  const read: Values = {}
  for (const flag of Object.keys(spec) as Flag[]) {
    const { env: name, schema } = spec[flag]
    const fromArgs = values[flag]
    const raw = typeof fromArgs === 'string' ? fromArgs : env[name]
    if (raw === undefined || raw === '') continue
    const parsed = schema.safeParse(raw)
    if (!parsed.success) {
      const source = typeof fromArgs === 'string' ? `--${flag}` : name
      throw new Error(
        `${source}=${JSON.stringify(raw)}: ${describeIssues(parsed.error).replace(/^body: /, '')}`,
      )
    }
    Object.assign(read, { [flag]: parsed.data })
  }
  const customersPaging = read['customers-paging'] ?? read.paging
  const productsPaging = read['products-paging'] ?? read.paging
  return {
    ...(read.host === undefined ? {} : { host: read.host }),
    ...(read.port === undefined ? {} : { port: read.port }),
    ...(read.customers === undefined ? {} : { customers: read.customers }),
    ...(read.products === undefined ? {} : { products: read.products }),
    ...(read.seed === undefined ? {} : { seed: read.seed }),
    ...(read['page-size'] === undefined ? {} : { pageSize: read['page-size'] }),
    ...(read['max-page-size'] === undefined ? {} : { maxPageSize: read['max-page-size'] }),
    ...(read['next-links'] === undefined ? {} : { nextLinks: read['next-links'] }),
    ...(read.token === undefined ? {} : { token: read.token }),
    ...(read['numeric-id-share'] === undefined ? {} : { numericIdShare: read['numeric-id-share'] }),
    paging: {
      ...(customersPaging === undefined ? {} : { customers: customersPaging }),
      ...(productsPaging === undefined ? {} : { products: productsPaging }),
    },
  }
}
