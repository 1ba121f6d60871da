import { describe, expect, it } from 'vitest'
import { Gateway, GatewayError, reconnectPolicy, type GatewayConnection } from './gateway'

/** A stand-in for HubConnection that records invocations and lets the test play the server. */
class FakeConnection implements GatewayConnection {
  readonly invocations: unknown[][] = []
  readonly handlers = new Map<string, (...args: unknown[]) => void>()
  reply: (type: string, payload: unknown) => Promise<unknown> = async () => 7
  failStart = false
  private reconnecting?: (error?: Error) => void
  private reconnected?: (connectionId?: string) => void
  private closed?: (error?: Error) => void

  async start() {
    if (this.failStart) throw new Error('Failed to connect')
  }
  async stop() {}
  async invoke<T>(methodName: string, ...args: unknown[]): Promise<T> {
    this.invocations.push([methodName, ...args])
    return (await this.reply(args[0] as string, args[1])) as T
  }
  on(methodName: string, handler: (...args: unknown[]) => void) {
    this.handlers.set(methodName, handler)
  }
  onreconnecting(callback: (error?: Error) => void) {
    this.reconnecting = callback
  }
  onreconnected(callback: (connectionId?: string) => void) {
    this.reconnected = callback
  }
  onclose(callback: (error?: Error) => void) {
    this.closed = callback
  }

  serverSends(type: string, payload: unknown) {
    this.handlers.get('Event')!(type, payload)
  }
  drop() {
    this.reconnecting!(new Error('lost'))
  }
  comeBack() {
    this.reconnected!('new-id')
  }
  close() {
    this.closed!()
  }
}

describe('Gateway', () => {
  it('sends an event through the hub method Send and returns its sequence number', async () => {
    const connection = new FakeConnection()
    const gateway = new Gateway(connection)

    const seq = await gateway.send('say', { room: 'lobby', text: 'hi' })

    expect(seq).toBe(7)
    expect(connection.invocations).toEqual([['Send', 'say', { room: 'lobby', text: 'hi' }]])
  })

  it('turns a hub refusal into a GatewayError carrying the code', async () => {
    const connection = new FakeConnection()
    connection.reply = async () => {
      throw new Error("An unexpected error occurred invoking 'Send' on the server. HubException: payload_too_large: The payload is 40000 bytes; the limit is 32768.")
    }
    const gateway = new Gateway(connection)

    const error = await gateway.send('say', {}).catch((e: unknown) => e)

    expect(error).toBeInstanceOf(GatewayError)
    expect(error).toMatchObject({ code: 'payload_too_large', message: 'The payload is 40000 bytes; the limit is 32768.' })
  })

  it('reports a send lost with its connection as connection_lost', () => {
    const error = GatewayError.from(new Error('Invocation canceled due to the underlying connection being closed.'))

    expect(error.code).toBe('connection_lost')
    expect(error.message).toContain('underlying connection being closed')
  })

  it('hands each event to the subscribers of its type until they unsubscribe', () => {
    const connection = new FakeConnection()
    const gateway = new Gateway(connection)
    const messages: unknown[] = []
    const all: string[] = []
    const unsubscribe = gateway.on('message', (payload) => messages.push(payload))
    gateway.onAny((type) => all.push(type))

    connection.serverSends('message', { seq: 1 })
    connection.serverSends('joined', { room: 'lobby' })
    unsubscribe()
    connection.serverSends('message', { seq: 2 })

    expect(messages).toEqual([{ seq: 1 }])
    expect(all).toEqual(['message', 'joined', 'message'])
  })

  it('follows the connection through connecting, connected, reconnecting and disconnected', async () => {
    const connection = new FakeConnection()
    const gateway = new Gateway(connection)
    const seen: string[] = []
    let reconnects = 0
    gateway.onStatus((status) => seen.push(status))
    gateway.onReconnected(() => (reconnects += 1))

    await gateway.start()
    connection.drop()
    connection.comeBack()
    connection.close()

    expect(seen).toEqual(['connecting', 'connected', 'reconnecting', 'connected', 'disconnected'])
    expect(reconnects).toBe(1)
    expect(gateway.status).toBe('disconnected')
  })

  it('counts a start after the connection closed for good as a reconnect, so the page signs in again', async () => {
    const connection = new FakeConnection()
    const gateway = new Gateway(connection)
    let reconnects = 0
    gateway.onReconnected(() => (reconnects += 1))

    await gateway.connect()
    connection.close()
    await Promise.all([gateway.connect(), gateway.connect()])

    expect(reconnects).toBe(1)
    expect(gateway.status).toBe('connected')
  })

  it('is disconnected after a failed start, and says why', async () => {
    const connection = new FakeConnection()
    connection.failStart = true
    const gateway = new Gateway(connection)

    await expect(gateway.start()).rejects.toThrow('Failed to connect')
    expect(gateway.status).toBe('disconnected')
  })

  it('passes on the reason the hub gives before closing a connection', () => {
    const connection = new FakeConnection()
    const gateway = new Gateway(connection)
    const reasons: string[] = []
    gateway.onClosing((reason) => reasons.push(reason))

    connection.handlers.get('Closing')!('rate_limited: too many events')

    expect(reasons).toEqual(['rate_limited: too many events'])
  })

  it('keeps retrying a lost connection for ever, at most every ten seconds', () => {
    const delays = [0, 1, 2, 3, 4, 50, 1000].map((previousRetryCount) =>
      reconnectPolicy.nextRetryDelayInMilliseconds({ previousRetryCount, elapsedMilliseconds: 0, retryReason: new Error() }))

    expect(delays).toEqual([0, 1000, 2000, 5000, 10_000, 10_000, 10_000])
  })
})
