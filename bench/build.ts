/**
 * The compiled build (`dist/`) for benchmarks that measure what the Docker image runs: compiled as
 * `npm run build` and the Dockerfile's build stage do, so a stale `dist/` is never measured.
 */
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { projectRoot } from '../src/infra/paths.ts'

/** The compiled `pipeline` CLI. */
export const compiledCli = join(projectRoot, 'dist', 'cli.js')

/** Compiles `src/` into `dist/` with `tsconfig.build.json`; throws when tsc fails. */
export function compileBuild(): void {
  const tsc = join(projectRoot, 'node_modules', 'typescript', 'bin', 'tsc')
  const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], {
    cwd: projectRoot,
    stdio: 'inherit',
  })
  if (result.status !== 0) throw new Error(`tsc -p tsconfig.build.json failed (exit ${result.status})`)
}
