// The real system for browser tests: a RabbitMQ node, a PostgreSQL server, the hub and workers as
// OS processes from the Release build, and the built client served by `vite preview` with its /hub
// proxy, as the README's run command does.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { createLogger, preview, type PreviewServer } from 'vite'
import { hubProxy, quietProxyLogger } from '../hubProxy'

export const clientDir = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const repositoryRoot = resolve(clientDir, '..')
export const resultsDir = join(clientDir, 'test-results')

const run = promisify(execFile)

export interface BrokerAddress {
  amqp: string
  management: string
}

/** Polls `condition` until it holds, failing with `what` after `timeoutMs`. */
export async function waitUntil(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting until ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

export async function freePort(): Promise<number> {
  return await new Promise((resolvePort, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolvePort(port))
    })
  })
}

function authHeader(uri: URL): string {
  return 'Basic ' + Buffer.from(`${decodeURIComponent(uri.username)}:${decodeURIComponent(uri.password)}`).toString('base64')
}

/** A virtual host of its own for one test's system; returns its AMQP URI. */
export async function createVirtualHost(broker: BrokerAddress, name: string): Promise<string> {
  const management = new URL(broker.management)
  const amqp = new URL(broker.amqp)
  const api = `${management.protocol}//${management.host}/api`
  const headers = { authorization: authHeader(management), 'content-type': 'application/json' }
  const put = async (path: string, body: object) => {
    const response = await fetch(`${api}${path}`, { method: 'PUT', headers, body: JSON.stringify(body) })
    if (!response.ok) throw new Error(`PUT ${path} answered ${response.status}: ${await response.text()}`)
  }
  await put(`/vhosts/${encodeURIComponent(name)}`, {})
  await put(`/permissions/${encodeURIComponent(name)}/${amqp.username}`, { configure: '.*', write: '.*', read: '.*' })
  amqp.pathname = `/${encodeURIComponent(name)}`
  return amqp.toString()
}

/** The run's PostgreSQL server: its superuser URI, and what stops it. */
export interface PostgresServer {
  uri: string
  stop: () => Promise<void>
}

/**
 * POSTGRES_URI when set; else a private cluster of Debian's postgresql started on a free port by
 * scripts/postgres-node in a temp folder, durability off (a test run's data is thrown away).
 */
export async function startPostgres(): Promise<PostgresServer> {
  const given = process.env.POSTGRES_URI
  if (given) return { uri: given, stop: async () => undefined }

  const script = join(repositoryRoot, 'scripts', 'postgres-node')
  const dir = mkdtempSync(join(tmpdir(), 'socketstarter-e2e-pg-'))
  const env = { ...process.env, POSTGRES_NODE_FAST: '1' }
  const stop = async () => {
    try {
      await run(script, ['stop', dir], { env })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
  try {
    const { stdout } = await run(script, ['start', dir], { env })
    const uri = /^POSTGRES_URI=(.*)$/m.exec(stdout)?.[1]
    if (!uri) throw new Error(`scripts/postgres-node printed no POSTGRES_URI:\n${stdout}`)
    return { uri, stop }
  } catch (error) {
    // A cluster that started half-way must not outlive the failure.
    await stop().catch(() => undefined)
    throw error
  }
}

/** Debian's psql (its packages keep it off PATH), the newest version installed; else psql on PATH. */
function psql(): string {
  const root = '/usr/lib/postgresql'
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'psql'))) : []
  versions.sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a))
  return versions.length > 0 ? join(root, versions[0], 'bin', 'psql') : 'psql'
}

async function runSql(serverUri: string, sql: string): Promise<void> {
  await run(psql(), [serverUri, '--quiet', '--no-psqlrc', '--set', 'ON_ERROR_STOP=1', '--command', sql]).catch((error: { stderr?: string }) => {
    throw new Error(`psql failed on ${sql}: ${error.stderr ?? error}`)
  })
}

async function querySql(uri: string, sql: string): Promise<string> {
  const { stdout } = await run(psql(), [uri, '--no-psqlrc', '--tuples-only', '--no-align', '--set', 'ON_ERROR_STOP=1', '--command', sql])
  return stdout.trim()
}

const quoteIdentifier = (name: string) => `"${name.replaceAll('"', '""')}"`

/** A database of its own for one test's system; returns its URI. */
export async function createDatabase(serverUri: string, name: string): Promise<string> {
  await runSql(serverUri, `CREATE DATABASE ${quoteIdentifier(name)}`)
  const uri = new URL(serverUri)
  uri.pathname = `/${encodeURIComponent(name)}`
  return uri.toString()
}

/** Drops a database, cutting whoever is still connected to it. */
export async function dropDatabase(serverUri: string, name: string): Promise<void> {
  await runSql(serverUri, `DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`)
}

// Whatever happens to the test run, no service outlives it.
const running = new Set<ChildProcess>()
process.once('exit', () => running.forEach((child) => child.kill('SIGKILL')))

/** One .NET service as its own OS process: `dotnet X.dll`, ready when /health/ready answers. */
export class Service {
  private exited = false
  private readonly child: ChildProcess
  readonly url: string

  private constructor(child: ChildProcess, url: string) {
    this.child = child
    this.url = url
    running.add(child)
    child.once('exit', () => {
      this.exited = true
      running.delete(child)
    })
  }

  static async start(project: 'Hub.Front' | 'Chat.Worker', name: string, settings: Record<string, string>): Promise<Service> {
    const folder = join(repositoryRoot, project, 'bin', 'Release', 'net10.0')
    const dll = join(folder, `${project}.dll`)
    if (!existsSync(dll)) throw new Error(`${dll} is missing: build first (dotnet build -c Release; scripts/test does).`)
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    mkdirSync(join(resultsDir, 'logs'), { recursive: true })
    const log = createWriteStream(join(resultsDir, 'logs', `${name}.log`), { flags: 'a' })
    const env: NodeJS.ProcessEnv = { ...process.env, ASPNETCORE_URLS: url, DOTNET_ENVIRONMENT: 'Testing' }
    for (const [key, value] of Object.entries(settings)) env[key.replaceAll(':', '__')] = value
    const child = spawn('dotnet', [dll, '--contentRoot', folder], { cwd: folder, env, stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout!.pipe(log)
    child.stderr!.pipe(log)
    const service = new Service(child, url)
    try {
      await waitUntil(async () => {
        if (service.exited) throw new Error(`${project} (${name}) exited before it was ready; see test-results/logs/${name}.log`)
        try {
          return (await fetch(`${url}/health/ready`)).ok
        } catch {
          return false
        }
      }, `${project} (${name}) reports ready`, 60_000)
    } catch (error) {
      service.kill()
      throw error
    }
    return service
  }

  get running(): boolean {
    return !this.exited
  }

  /**
   * SIGTERM, as an orchestrator stops a service: in-flight events finish, then it exits. Past
   * the service's own 30 s shutdown limit (plus room for a loaded machine), SIGKILL and fail.
   */
  async stop(): Promise<void> {
    if (this.exited) return
    this.child.kill('SIGTERM')
    try {
      await waitUntil(() => this.exited, 'the service exits after SIGTERM', 45_000)
    } catch (error) {
      this.kill()
      throw error
    }
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL')
  }
}

/**
 * A TCP front for hub instances, as a load balancer without sticky sessions: each new connection
 * goes to the first hub that accepts it, so when one is killed, reconnecting clients land on the
 * next. While `refusing`, new connections are closed at once (the network is down for newcomers).
 */
export class FailoverProxy {
  refusing = false
  private holding = false
  private readonly held: (() => void)[] = []
  private readonly sockets = new Set<Socket>()
  private readonly server: Server
  readonly url: string

  private constructor(server: Server, url: string) {
    this.server = server
    this.url = url
  }

  static async start(targets: string[]): Promise<FailoverProxy> {
    const addresses = targets.map((t) => new URL(t))
    let proxy: FailoverProxy | undefined
    const server = createServer((client) => {
      if (proxy!.refusing) return void client.destroy()
      proxy!.track(client)
      client.pause()
      const tryTarget = (index: number) => {
        if (index >= addresses.length) return void client.destroy()
        const upstream = connect(Number(addresses[index].port), addresses[index].hostname)
        let connected = false
        upstream.once('connect', () => {
          connected = true
          proxy!.track(upstream)
          client.pipe(upstream)
          upstream.pipe(client)
          client.resume()
        })
        upstream.on('error', () => (connected ? client.destroy() : tryTarget(index + 1)))
        upstream.on('close', () => connected && client.destroy())
        client.on('close', () => upstream.destroy())
        client.on('error', () => upstream.destroy())
      }
      if (proxy!.holding) proxy!.held.push(() => !client.destroyed && tryTarget(0))
      else tryTarget(0)
    })
    const port = await freePort()
    await new Promise<void>((done) => server.listen(port, '127.0.0.1', done))
    proxy = new FailoverProxy(server, `http://127.0.0.1:${port}`)
    return proxy
  }

  /** The network drops: every connection through the proxy is cut, and new ones wait until {@link release}. */
  cut(): void {
    this.holding = true
    this.sockets.forEach((s) => s.destroy())
  }

  /** The network is back: waiting connections go through. */
  release(): void {
    this.holding = false
    this.held.splice(0).forEach((go) => go())
  }

  private track(socket: Socket): void {
    this.sockets.add(socket)
    socket.once('close', () => this.sockets.delete(socket))
  }

  async close(): Promise<void> {
    this.sockets.forEach((s) => s.destroy())
    await new Promise((done) => this.server.close(done))
  }
}

/** The errors the page servers logged, as `vite preview` would print them (through the app's own quiet logger). */
export const previewErrors: string[] = []

async function previewProxyingTo(target: string, outDir = 'dist'): Promise<{ server: PreviewServer; url: string }> {
  const port = await freePort()
  const logger = createLogger('warn')
  const error = logger.error.bind(logger)
  logger.error = (message, options) => {
    previewErrors.push(message)
    error(message, options)
  }
  const server = await preview({
    configFile: false,
    root: clientDir,
    build: { outDir },
    customLogger: quietProxyLogger(logger),
    preview: { host: '127.0.0.1', port, strictPort: true, proxy: hubProxy(target) },
  })
  return { server, url: `http://127.0.0.1:${port}/` }
}

export interface SystemOptions {
  /** Settings for every hub instance. */
  hubSettings?: Record<string, string>
  /**
   * A second hub instance, behind the first in the {@link FailoverProxy} the app's page reaches
   * the hubs through; `secondHubAppUrl` serves the app straight from it.
   */
  secondHub?: boolean
  /** Serve the app built with stateful reconnect on (`dist-stateful`, made by the global setup). */
  statefulApp?: boolean
}

/** One test's system: its own virtual host, database, hub, workers and page server. */
export class ChatSystem {
  readonly services: Service[] = []
  readonly workers: Service[] = []
  private readonly servers: PreviewServer[] = []
  /** The front between the app's pages and the hubs (first hub while it lives, then the second). */
  proxy!: FailoverProxy
  secondHub?: Service
  secondHubAppUrl?: string
  directAppUrl!: string
  private workerCount = 0
  readonly name: string
  private readonly brokerUri: string
  private readonly postgresServer: string
  private databaseUri?: string
  hub!: Service
  appUrl!: string

  private constructor(name: string, brokerUri: string, postgresServer: string) {
    this.name = name
    this.brokerUri = brokerUri
    this.postgresServer = postgresServer
  }

  /** Underscores, not dashes: a name that needs no quoting wherever it goes. */
  private get databaseName(): string {
    return this.name.replaceAll('-', '_')
  }

  static async start(broker: BrokerAddress, postgresServer: string, label: string, options: SystemOptions = {}): Promise<ChatSystem> {
    const name = `e2e-${label}-${Date.now().toString(36)}`
    const system = new ChatSystem(name, await createVirtualHost(broker, name), postgresServer)
    try {
      system.databaseUri = await createDatabase(postgresServer, system.databaseName)
      // Workers first: they declare the queue the hub sends to.
      await system.startWorker()
      system.hub = await system.startHub(`${name}-hub`, options.hubSettings)
      const hubs = [system.hub.url]
      if (options.secondHub) {
        system.secondHub = await system.startHub(`${name}-hub-2`, options.hubSettings)
        hubs.push(system.secondHub.url)
      }
      // The pages reach the hubs through a front the tests can break; `directAppUrl` and
      // `secondHubAppUrl` bypass it, straight to the first or second hub.
      system.proxy = await FailoverProxy.start(hubs)
      const outDir = options.statefulApp ? 'dist-stateful' : 'dist'
      const app = await previewProxyingTo(system.proxy.url, outDir)
      const direct = await previewProxyingTo(system.hub.url, outDir)
      system.servers.push(app.server, direct.server)
      system.appUrl = app.url
      system.directAppUrl = direct.url
      if (system.secondHub) {
        const second = await previewProxyingTo(system.secondHub.url, outDir)
        system.servers.push(second.server)
        system.secondHubAppUrl = second.url
      }
      return system
    } catch (error) {
      await system.dispose()
      throw error
    }
  }

  private async startHub(name: string, settings: Record<string, string> = {}): Promise<Service> {
    const hub = await Service.start('Hub.Front', name, {
      'ConnectionStrings:rabbitmq': this.brokerUri,
      'Gateway:UpstreamExchange': 'chat-worker',
      ...settings,
    })
    this.services.push(hub)
    return hub
  }

  async startWorker(): Promise<Service> {
    this.workerCount += 1
    const worker = await Service.start('Chat.Worker', `${this.name}-worker-${this.workerCount}`, {
      'ConnectionStrings:rabbitmq': this.brokerUri,
      'ConnectionStrings:postgres': this.databaseUri!,
    })
    this.services.push(worker)
    this.workers.push(worker)
    return worker
  }

  /**
   * Until the workers have let go of every signed-in connection: a name is taken while its session
   * has a connection open, so the next test's "Ada" waits for the last one's to be gone.
   */
  async waitUntilNobodySignedIn(): Promise<void> {
    await waitUntil(async () => (await querySql(this.databaseUri!, 'SELECT COUNT(*) FROM chat_connections WHERE session_id IS NOT NULL')) === '0',
      'the workers let go of every signed-in connection')
  }

  async stopAllWorkers(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.stop()))
  }

  async dispose(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.close().catch(() => undefined)))
    await this.proxy?.close()
    await Promise.all(this.services.map((s) => s.stop().catch(() => s.kill())))
    if (this.databaseUri) await dropDatabase(this.postgresServer, this.databaseName)
  }
}
