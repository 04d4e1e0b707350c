/** Where the launcher keeps what it downloads and what its local parts write. */
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository root (this file lives in src/infra/). */
export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** Downloads and local state, outside git (see .gitignore); `PIPELINE_CACHE_DIR` moves it. */
export const cacheDir = process.env.PIPELINE_CACHE_DIR ?? join(projectRoot, '.cache')
