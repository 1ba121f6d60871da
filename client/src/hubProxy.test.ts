import { describe, expect, it } from 'vitest'
import type { Logger } from 'vite'
import { quietProxyLogger } from '../hubProxy'

function recording(): { logger: Logger; errors: string[] } {
  const errors: string[] = []
  const logger = { error: (message: string) => void errors.push(message) } as unknown as Logger
  return { logger, errors }
}

const failure = (code: string) => Object.assign(new Error(`read ${code}`), { code })

describe('the preview server’s log', () => {
  it('leaves out a WebSocket whose tab went away, and keeps every other error', () => {
    const { logger, errors } = recording()
    const quiet = quietProxyLogger(logger)
    quiet.error('ws proxy error:\nError: read ECONNRESET', { error: failure('ECONNRESET') })
    quiet.error('ws proxy socket error:\nError: write EPIPE', { error: failure('EPIPE') })
    quiet.error('ws proxy error:\nError: connect ECONNREFUSED', { error: failure('ECONNREFUSED') })
    quiet.error('http proxy error: /hub/negotiate\nError: read ECONNRESET', { error: failure('ECONNRESET') })
    quiet.error('something else')
    expect(errors).toEqual([
      'ws proxy error:\nError: connect ECONNREFUSED',
      'http proxy error: /hub/negotiate\nError: read ECONNRESET',
      'something else',
    ])
  })
})
