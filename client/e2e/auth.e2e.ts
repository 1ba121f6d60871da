import { createHmac } from 'node:crypto'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { launchBrowser, Person } from './browser'
import { ChatSystem } from './system'

const signingKey = 'e2e-signing-key-of-at-least-32-bytes!!'

/** An HS256 JWT, as the hub's `Auth:SigningKey` expects. */
function token(claims: Record<string, unknown>): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url')
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ ...claims, exp: Math.floor(Date.now() / 1000) + 3600 })}`
  return `${unsigned}.${createHmac('sha256', signingKey).update(unsigned).digest('base64url')}`
}

describe('The chat on a hub that requires a token', () => {
  let system: ChatSystem | undefined
  let browser: Browser | undefined

  beforeAll(async () => {
    system = await ChatSystem.start(inject('broker'), inject('postgres'), 'auth', { hubSettings: { 'Auth:SigningKey': signingKey } })
    browser = await launchBrowser()
  })

  afterAll(async () => {
    try {
      await browser?.close()
    } finally {
      await system?.dispose()
    }
  })

  it('connects with the token from the page’s fragment and signs in under the token’s name', async () => {
    const grace = await Person.open(browser!, `${system!.appUrl}#access_token=${token({ sub: 'user-1', name: 'Grace' })}`, 'Grace')

    await grace.signIn('Whatever I type')
    await grace.join('secure')
    await grace.say('signed by the token')
    await grace.waitForMessages(['Grace: signed by the token'])

    expect(await grace.messages()).toEqual(['Grace: signed by the token'])
    expect(grace.page.url()).not.toContain('access_token')
    expect(grace.errors).toEqual([])
  })

  it('is refused without a token: the page keeps trying and never shows connected', async () => {
    const context = await browser!.newContext()
    // Every status the badge shows, from the first render on.
    await context.addInitScript(() => {
      const seen: string[] = []
      ;(window as unknown as { statuses: string[] }).statuses = seen
      new MutationObserver(() => {
        const status = document.querySelector('[aria-label="connection"]')?.getAttribute('data-status')
        if (status && seen.at(-1) !== status) seen.push(status)
      }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-status'] })
    })
    const page = await context.newPage()
    await page.goto(system!.appUrl)

    // Two refused attempts: the hub answers the WebSocket with 401 each time.
    await page.waitForFunction(() =>
      (window as unknown as { statuses: string[] }).statuses.filter((s) => s === 'disconnected').length >= 2, undefined, { timeout: 30_000 })
    const statuses = await page.evaluate(() => (window as unknown as { statuses: string[] }).statuses)
    expect(statuses).not.toContain('connected')
    expect(statuses).toContain('connecting')
    await context.close()
  })
})
