/**
 * A memory cgroup for a benchmark's service processes (`--memory-limit-mb`): a child of this
 * process's own cgroup with a memory limit, which a process joins before Node starts, so that Node
 * sizes its heap by the limit as it does in a container with one. cgroup v1 (the `memory` controller)
 * or v2 (`memory` enabled for the children of this process's cgroup); needs write access to the
 * cgroup file system (root, here). The kernel enforces the limit: a process that needs more is
 * killed (counted as an OOM kill).
 */
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** A memory cgroup made by {@link createMemoryCgroup}. */
export interface MemoryCgroup {
  readonly limitBytes: number
  /** The command and arguments that run `command args` inside the group. */
  wrap(command: string, args: readonly string[]): { command: string; args: string[] }
  /** The most memory charged to the group at once (bytes), NaN when the kernel does not say. */
  peakBytes(): Promise<number>
  /** Processes of the group the kernel killed for want of memory. */
  oomKills(): Promise<number>
  /** Removes the group (once its processes have ended). */
  remove(): Promise<void>
}

const ROOT = '/sys/fs/cgroup'

/** Where this process's cgroup of `controller` (v1), or its unified cgroup (v2, `''`), is mounted. */
async function ownCgroup(controller: string): Promise<string | undefined> {
  const lines = (await readFile('/proc/self/cgroup', 'utf8').catch(() => '')).split('\n')
  for (const line of lines) {
    const [, controllers, path] = line.split(':')
    if (path === undefined) continue
    if (controller === '' ? controllers === '' : controllers?.split(',').includes(controller))
      return controller === '' ? join(ROOT, path) : join(ROOT, controller, path)
  }
  return undefined
}

const readNumber = async (file: string): Promise<number> =>
  Number((await readFile(file, 'utf8').catch(() => '')).trim() || Number.NaN)

const eventCount = async (file: string, event: string): Promise<number> => {
  const text = await readFile(file, 'utf8').catch(() => '')
  return Number(new RegExp(`^${event} (\\d+)$`, 'm').exec(text)?.[1] ?? 0)
}

/**
 * Makes a memory cgroup named `name` limited to `limitBytes`.
 *
 * @throws an Error saying why when no memory cgroup can be made here
 */
export async function createMemoryCgroup(name: string, limitBytes: number): Promise<MemoryCgroup> {
  const v1 = await ownCgroup('memory')
  const v2 = v1 === undefined ? await ownCgroup('') : undefined
  const parent = v1 ?? v2
  if (parent === undefined) throw new Error('no memory cgroup is mounted under /sys/fs/cgroup')
  const dir = join(parent, name)
  try {
    await mkdir(dir)
    if (v1 !== undefined) await writeFile(join(dir, 'memory.limit_in_bytes'), String(limitBytes))
    else await writeFile(join(dir, 'memory.max'), String(limitBytes))
  } catch (error) {
    await rmdir(dir).catch(() => undefined)
    throw new Error(
      `cannot make a memory cgroup in ${parent} (${(error as Error).message}): --memory-limit-mb needs root and a cgroup file system with the memory controller`,
    )
  }
  return {
    limitBytes,
    wrap: (command, args) => ({
      command: '/bin/sh',
      // The shell joins the group, then becomes the command (same pid): Node starts inside it.
      args: ['-c', 'echo $$ > "$0" && exec "$@"', join(dir, 'cgroup.procs'), command, ...args],
    }),
    peakBytes: () => readNumber(join(dir, v1 !== undefined ? 'memory.max_usage_in_bytes' : 'memory.peak')),
    oomKills: () =>
      eventCount(join(dir, v1 !== undefined ? 'memory.oom_control' : 'memory.events'), 'oom_kill'),
    remove: () => rmdir(dir),
  }
}
