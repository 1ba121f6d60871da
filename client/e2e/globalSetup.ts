// One RabbitMQ for the browser tests: RABBITMQ_URI (with RABBITMQ_MANAGEMENT_URI) when set, else a
// private node of Debian's rabbitmq-server started on free ports by scripts/rabbitmq-node; and one
// PostgreSQL server (see startPostgres), where each test's system makes its own database. Also
// builds the client (type check included), so the tests always run against the current code.
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { TestProject } from 'vitest/node'
import { clientDir, repositoryRoot, startPostgres } from './system'

const run = promisify(execFile)

declare module 'vitest' {
  export interface ProvidedContext {
    broker: { amqp: string; management: string }
    /** The PostgreSQL server's superuser URI. */
    postgres: string
  }
}

export default async function setup(project: TestProject) {
  // The production build, as the run command makes it (Vitest's NODE_ENV=test would bundle
  // React's development build).
  const env = { ...process.env }
  delete env.NODE_ENV
  await run('npm', ['run', '--silent', 'build'], { cwd: clientDir, env }).catch((error: { stdout?: string; stderr?: string }) => {
    throw new Error(`The client does not build:\n${error.stdout ?? ''}${error.stderr ?? ''}`)
  })
  // The same app built as a deployment with sticky sessions would build it: stateful reconnect on.
  await run(join(clientDir, 'node_modules', '.bin', 'vite'), ['build', '--outDir', 'dist-stateful', '--emptyOutDir', '--logLevel', 'warn'], {
    cwd: clientDir,
    env: { ...env, VITE_STATEFUL_RECONNECT: 'true' },
  })

  const postgres = await startPostgres()
  project.provide('postgres', postgres.uri)

  const given = process.env.RABBITMQ_URI
  if (given) {
    const amqp = new URL(given)
    const management = process.env.RABBITMQ_MANAGEMENT_URI ?? `http://${amqp.username}:${amqp.password}@${amqp.hostname}:15672/`
    project.provide('broker', { amqp: given, management })
    return postgres.stop
  }

  const script = join(repositoryRoot, 'scripts', 'rabbitmq-node')
  const dir = mkdtempSync(join(tmpdir(), 'socketstarter-e2e-rabbit-'))
  try {
    const { stdout } = await run(script, ['start', dir])
    const value = (key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(stdout)?.[1]
    project.provide('broker', { amqp: value('AMQP_URI')!, management: value('MANAGEMENT_URI')! })
  } catch (error) {
    await postgres.stop()
    throw error
  }

  return async () => {
    try {
      await run(script, ['stop', dir])
      rmSync(dir, { recursive: true, force: true })
    } finally {
      await postgres.stop()
    }
  }
}
