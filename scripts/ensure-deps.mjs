// Runs before `npm start` and `npm test`, possibly on the system's older Node: installs the locked
// dependencies (among them Node 24 itself, the `node` package) when they are missing or stale.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const lock = join(root, 'package-lock.json')
const stamp = join(root, 'node_modules', '.deps-stamp')
const wanted = createHash('sha256').update(readFileSync(lock)).digest('hex')
const node24 = join(root, 'node_modules', '.bin', 'node')
const current = existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : ''

if (current !== wanted || !existsSync(node24)) {
  // `npm install` rather than `npm ci`: it installs exactly the locked versions too, but tolerates a
  // lock that lacks optional binaries of other platforms (the registry mirror here serves only the
  // Linux builds of Biome, so they cannot be recorded in the lock).
  process.stderr.write('Installing dependencies (npm install, from package-lock.json)...\n')
  const result = spawnSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' })
  if (result.status !== 0) {
    process.stderr.write(
      `npm install failed (exit ${result.status}): check access to the npm registry, then retry\n`,
    )
    process.exit(result.status ?? 1)
  }
  writeFileSync(stamp, `${createHash('sha256').update(readFileSync(lock)).digest('hex')}\n`)
}
