import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { launchBrowser, Person } from './browser'
import { ChatSystem, resultsDir } from './system'

describe('The chat in a real browser', () => {
  let system: ChatSystem
  let browser: Browser

  beforeAll(async () => {
    mkdirSync(resultsDir, { recursive: true })
    ;[system, browser] = await Promise.all([ChatSystem.start(inject('broker'), 'chat'), launchBrowser()])
  })

  afterAll(async () => {
    await browser?.close()
    await system?.dispose()
  })

  async function twoPeopleIn(room: string): Promise<[Person, Person]> {
    const [ada, bob] = await Promise.all([Person.open(browser, system.appUrl, 'Ada'), Person.open(browser, system.appUrl, 'Bob')])
    await ada.signIn()
    await ada.join(room)
    await bob.signIn()
    await bob.join(room)
    return [ada, bob]
  }

  it('two people in one room see each other’s messages in order, and both in the member list', async () => {
    const [ada, bob] = await twoPeopleIn('lobby')
    await ada.page.locator('[aria-label="members"]').getByText('Bob').waitFor()

    const turns: [Person, string][] = [[ada, 'Hi Bob!'], [bob, 'Hello Ada.'], [ada, 'Workers can restart under us.'], [bob, 'And we stay connected.']]
    for (const [speaker, text] of turns) {
      await speaker.say(text)
      const hearer = speaker === ada ? bob : ada
      await hearer.page.locator('.messages .text', { hasText: text }).waitFor()
    }
    const expected = turns.map(([p, text]) => `${p.name}: ${text}`)
    await ada.waitForMessages(expected)
    await bob.waitForMessages(expected)

    expect(await ada.messages()).toEqual(expected)
    expect(await bob.messages()).toEqual(expected)
    expect((await ada.members()).sort()).toEqual(['Ada', 'Bob'])
    expect((await bob.members()).sort()).toEqual(['Ada', 'Bob'])
    expect([...ada.errors, ...bob.errors]).toEqual([])
    await ada.page.screenshot({ path: join(resultsDir, 'two-users.png') })
  })

  it('keeps both people connected while every worker is stopped, and delivers what was sent meanwhile', async () => {
    const [ada, bob] = await twoPeopleIn('restarts')
    await ada.say('before the restart')
    await bob.page.locator('.messages .text', { hasText: 'before the restart' }).waitFor()

    await system.stopAllWorkers()
    await ada.say('sent while no worker runs')
    // Accepted by the broker, answered by nobody yet: the page says so.
    await ada.page.locator('[data-pending="accepted"]', { hasText: 'sent while no worker runs' }).getByText('waiting for workers').waitFor()
    await ada.page.getByRole('status', { name: 'workers' }).getByText('Waiting for workers').waitFor()

    await system.startWorker()
    const expected = ['Ada: before the restart', 'Ada: sent while no worker runs']
    await ada.waitForMessages(expected)
    await bob.waitForMessages(expected)

    expect(await ada.messages()).toEqual(expected)
    expect(await bob.messages()).toEqual(expected)
    expect(await ada.page.locator('[data-pending]').count()).toBe(0)
    await ada.page.getByRole('status', { name: 'workers' }).waitFor({ state: 'detached' })
    expect(await ada.statuses()).toEqual(['connected'])
    expect(await bob.statuses()).toEqual(['connected'])
    expect([...ada.errors, ...bob.errors]).toEqual([])
  })

  it('shows a message with script and HTML markup as text', async () => {
    const [ada, bob] = await twoPeopleIn('markup')
    const markup = '<script>window.injected = 1</script><b>bold</b> <img src="x" onerror="window.injected = 2"> & &amp;'

    await ada.say(markup)
    await bob.waitForMessages([`Ada: ${markup}`])

    expect(await bob.messages()).toEqual([`Ada: ${markup}`])
    for (const person of [ada, bob]) {
      expect(await person.page.locator('.messages .text b, .messages .text img, .messages .text script').count()).toBe(0)
      expect(await person.page.evaluate(() => (window as unknown as { injected?: number }).injected)).toBeUndefined()
    }
  })

  it('refuses an empty or over-long message in the page, with the reason, and sends nothing', async () => {
    const ada = await Person.open(browser, system.appUrl, 'Ada')
    await ada.signIn()
    await ada.join('limits')
    const box = ada.page.getByLabel('message', { exact: true })

    await box.press('Enter')
    await ada.page.getByRole('alert').getByText('Type a message first.').waitFor()
    await box.fill('x'.repeat(4001))
    await ada.page.getByRole('alert').getByText('A message is at most 4000 characters (this one has 4001).').waitFor()
    await box.press('Enter')

    expect(await ada.page.locator('.messages li[data-seq], [data-pending]').count()).toBe(0)
    expect(await box.inputValue()).toHaveLength(4001)
  })

  it('is usable at a phone’s width: nothing overflows sideways', async () => {
    const ada = await Person.open(browser, system.appUrl, 'Ada', { width: 390, height: 760 })
    await ada.signIn()
    await ada.join('phones')
    await ada.say('Typed on a phone, with a rather long line that must wrap rather than push the page sideways.')
    await ada.waitForMessages(['Ada: Typed on a phone, with a rather long line that must wrap rather than push the page sideways.'])

    const overflow = await ada.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
    expect(overflow).toBeLessThanOrEqual(0)
    await ada.page.getByLabel('message', { exact: true }).waitFor({ state: 'visible' })
    await ada.page.screenshot({ path: join(resultsDir, 'phone.png') })
  })
})
