import {
  HttpTransportType,
  HubConnectionBuilder,
  LogLevel,
  type IRetryPolicy,
  type RetryContext,
} from '@microsoft/signalr'

/** What the page shows about its link to the hub. */
export type ConnectionStatus = 'connecting' | 'connected' | 'reconnecting' | 'disconnected'

/**
 * The part of a SignalR HubConnection the gateway uses. A real HubConnection is one; unit tests
 * pass a stand-in.
 */
export interface GatewayConnection {
  start(): Promise<void>
  stop(): Promise<void>
  invoke<T>(methodName: string, ...args: unknown[]): Promise<T>
  // SignalR hands over whatever arguments the server sent.
  on(methodName: string, handler: (...args: any[]) => void): void
  onreconnecting(callback: (error?: Error) => void): void
  onreconnected(callback: (connectionId?: string) => void): void
  onclose(callback: (error?: Error) => void): void
}

/** The hub refused an event (the code starts its message), or the connection failed under it. */
export class GatewayError extends Error {
  readonly code: string

  constructor(code: string, message: string) {
    super(message)
    this.name = 'GatewayError'
    this.code = code
  }

  /** Reads a code such as `payload_too_large` out of the HubException text SignalR passes on. */
  static from(error: unknown): GatewayError {
    if (error instanceof GatewayError) return error
    const text = error instanceof Error ? error.message : String(error)
    const match = /HubException: ([a-z_]+): ([\s\S]*)$/.exec(text)
    if (match) return new GatewayError(match[1], match[2])
    return new GatewayError('connection_lost', `The connection failed during the send, so it may not have been sent (${text}).`)
  }
}

type Listener<T> = (value: T) => void

/** The gateway protocol: one method up (`Send`), typed events down. Components use only this. */
export class Gateway {
  private readonly listeners = new Map<string, Set<Listener<unknown>>>()
  private readonly statusListeners = new Set<Listener<ConnectionStatus>>()
  private readonly reconnectedListeners = new Set<Listener<void>>()
  private readonly closingListeners = new Set<Listener<string>>()
  private currentStatus: ConnectionStatus = 'disconnected'
  private hasBeenConnected = false
  private connecting?: Promise<void>
  private readonly connection: GatewayConnection

  constructor(connection: GatewayConnection) {
    this.connection = connection
    connection.on('Event', (type: string, payload: unknown) => this.dispatch(type, payload))
    connection.on('Closing', (reason: string) => this.closingListeners.forEach((l) => l(reason)))
    connection.onreconnecting(() => this.setStatus('reconnecting'))
    connection.onreconnected(() => {
      this.hasBeenConnected = true
      this.setStatus('connected')
      this.reconnectedListeners.forEach((l) => l())
    })
    connection.onclose(() => this.setStatus('disconnected'))
  }

  get status(): ConnectionStatus {
    return this.currentStatus
  }

  async start(): Promise<void> {
    this.setStatus('connecting')
    try {
      await this.connection.start()
      this.setStatus('connected')
      // Started again after the connection closed for good: as new to the server as a reconnect.
      if (this.hasBeenConnected) this.reconnectedListeners.forEach((l) => l())
      this.hasBeenConnected = true
    } catch (error) {
      this.setStatus('disconnected')
      throw error
    }
  }

  /** Starts, retrying with back-off until the hub answers; automatic reconnect takes over after that. */
  connect(): Promise<void> {
    this.connecting ??= (async () => {
      for (let attempt = 0; ; attempt += 1) {
        try {
          await this.start()
          return
        } catch {
          await new Promise((resolve) => setTimeout(resolve, Math.min(10_000, 1000 * 2 ** attempt)))
        }
      }
    })().finally(() => (this.connecting = undefined))
    return this.connecting
  }

  stop(): Promise<void> {
    return this.connection.stop()
  }

  /**
   * Sends one event. Resolves with the event's sequence number once the broker holds it
   * (accepted: a worker will process it); rejects with a {@link GatewayError} otherwise.
   */
  async send(type: string, payload: unknown): Promise<number> {
    try {
      return await this.connection.invoke<number>('Send', type, payload)
    } catch (error) {
      throw GatewayError.from(error)
    }
  }

  /** Subscribes to one event type; returns the unsubscribe function. */
  on<T = unknown>(type: string, listener: Listener<T>): () => void {
    let set = this.listeners.get(type)
    if (!set) this.listeners.set(type, (set = new Set()))
    set.add(listener as Listener<unknown>)
    return () => set.delete(listener as Listener<unknown>)
  }

  /** Every event, whatever its type. */
  onAny(listener: (type: string, payload: unknown) => void): () => void {
    return this.on('*', (event) => {
      const { type, payload } = event as { type: string; payload: unknown }
      listener(type, payload)
    })
  }

  onStatus(listener: Listener<ConnectionStatus>): () => void {
    this.statusListeners.add(listener)
    return () => this.statusListeners.delete(listener)
  }

  /** After a reconnect, automatic or by start() again: a new connection, unknown to the server. */
  onReconnected(listener: Listener<void>): () => void {
    this.reconnectedListeners.add(listener)
    return () => this.reconnectedListeners.delete(listener)
  }

  /** The hub is about to close this connection, and says why. */
  onClosing(listener: Listener<string>): () => void {
    this.closingListeners.add(listener)
    return () => this.closingListeners.delete(listener)
  }

  private dispatch(type: string, payload: unknown): void {
    this.listeners.get(type)?.forEach((l) => l(payload))
    this.listeners.get('*')?.forEach((l) => l({ type, payload }))
  }

  private setStatus(status: ConnectionStatus): void {
    if (status === this.currentStatus) return
    this.currentStatus = status
    this.statusListeners.forEach((l) => l(status))
  }
}

/** Retries for ever, backing off to every 10 s: a chat page left open should come back by itself. */
export const reconnectPolicy: IRetryPolicy = {
  nextRetryDelayInMilliseconds: (context: RetryContext) =>
    [0, 1000, 2000, 5000][context.previousRetryCount] ?? 10_000,
}

export interface GatewayOptions {
  /** The hub's address; by default `/hub` on the page's own origin. */
  url?: string
  /** A bearer token for hubs that require one (sent as `access_token` on the WebSocket). */
  accessToken?: () => string | Promise<string>
  /**
   * Negotiate, and keep the connection through short network blips with SignalR's stateful
   * reconnect (both sides buffer and replay on the same connection). Needs every request of a
   * connection to reach the same hub instance: one hub, or sticky sessions. Off by default.
   */
  statefulReconnect?: boolean
}

/**
 * A gateway over a real SignalR connection. By default WebSockets without negotiation: any hub
 * instance behind a load balancer can take the connection, so no sticky sessions are needed, and
 * a connection that drops is replaced by a new one on which the page resumes its session.
 */
export function connectGateway(options: GatewayOptions = {}): Gateway {
  const builder = new HubConnectionBuilder()
    .withUrl(options.url ?? '/hub', {
      skipNegotiation: !options.statefulReconnect,
      transport: HttpTransportType.WebSockets,
      accessTokenFactory: options.accessToken,
    })
    .withAutomaticReconnect(reconnectPolicy)
    .configureLogging(LogLevel.Warning)
  const connection = (options.statefulReconnect ? builder.withStatefulReconnect() : builder).build()
  return new Gateway(connection)
}
