#!/usr/bin/env node
// The installed `pipeline` command: the compiled CLI when built, else the TypeScript source, which
// Node 24 runs directly.
import { existsSync } from 'node:fs'

const built = new URL('../dist/cli.js', import.meta.url)
await import(existsSync(built) ? built.href : new URL('../src/cli.ts', import.meta.url).href)
