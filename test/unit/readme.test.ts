/** The README is the user's door: every configuration variable the services read is documented there. */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { envVarNames } from '../../src/config/env.ts'

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')

test('every environment variable of the config schema has a row in the README configuration table', () => {
  const missing = envVarNames.filter((name) => !readme.includes(`| \`${name}\` |`))
  assert.deepEqual(missing, [], `undocumented variables: ${missing.join(', ')}`)
})

test('the README gives the two quick-start commands', () => {
  assert.match(readme, /npm start\s+#/)
  assert.match(readme, /npm test\s+#/)
})
