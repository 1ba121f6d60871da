import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import { launchBrowser, Person } from './browser'
import { ChatSystem, resultsDir } from './system'

describe('The chat in a real browser', () => {
  let system: ChatSystem | undefined
  let browser: Browser | undefined
  const people: Person[] = []

  beforeAll(async () => {
    mkdirSync(resultsDir, { recursive: true })
    system = await ChatSystem.start(inject('broker'), inject('postgres'), 'chat')
    browser = await launchBrowser()
  })

  afterEach(async () => {
    await Promise.all(people.splice(0).map((p) => p.close()))
    await system?.waitUntilNobodySignedIn()
  })

  afterAll(async () => {
    try {
      await browser?.close()
    } finally {
      await system?.dispose()
    }
  })

  async function open(name: string, viewport?: { width: number; height: number }): Promise<Person> {
    const person = await Person.open(browser!, system!.appUrl, name, viewport)
    people.push(person)
    return person
  }

  /** Both pages show the same messages, in room order, and each sender's in the order they were sent. */
  async function expectSameConversation(ada: Person, bob: Person, sent: Record<string, string[]>) {
    const all = Object.entries(sent).flatMap(([name, texts]) => texts.map((t) => `${name}: ${t}`))
    await ada.waitForMessages(all)
    await bob.waitForMessages(all)
    const [atAda, atBob] = [await ada.messages(), await bob.messages()]
    expect(atAda).toEqual(atBob)
    expect([...atAda].sort()).toEqual([...all].sort())
    for (const [name, texts] of Object.entries(sent)) {
      expect(atAda.filter((m) => m.startsWith(`${name}: `))).toEqual(texts.map((t) => `${name}: ${t}`))
    }
    const seqs = await ada.seqs()
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
    expect(new Set(seqs).size).toBe(seqs.length)
  }

  async function twoPeopleIn(room: string): Promise<[Person, Person]> {
    const [ada, bob] = await Promise.all([open('Ada'), open('Bob')])
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
    await ada.page.screenshot({ path: join(resultsDir, 'two-users.png') })

    // Now both at once, without waiting for each other.
    const burst = { Ada: ['a1', 'a2', 'a3', 'a4', 'a5'], Bob: ['b1', 'b2', 'b3', 'b4', 'b5'] }
    await Promise.all([ada.sayAll(burst.Ada), bob.sayAll(burst.Bob)])
    await expectSameConversation(ada, bob, {
      Ada: [turns[0][1], turns[2][1], ...burst.Ada],
      Bob: [turns[1][1], turns[3][1], ...burst.Bob],
    })
    expect([...ada.errors, ...bob.errors]).toEqual([])
  })

  it('keeps both people connected while every worker is stopped, and delivers what was sent meanwhile', async () => {
    const [ada, bob] = await twoPeopleIn('restarts')
    await ada.say('before the restart')
    await bob.page.locator('.messages .text', { hasText: 'before the restart' }).waitFor()

    await system!.stopAllWorkers()
    const meanwhile = { Ada: ['sent while no worker runs', 'a second one', 'and a third'], Bob: ['Bob too', 'Bob again'] }
    await Promise.all([ada.sayAll(meanwhile.Ada), bob.sayAll(meanwhile.Bob)])
    // Accepted by the broker, answered by nobody yet: the page says so.
    await ada.page.locator('[data-pending="accepted"]', { hasText: 'sent while no worker runs' }).getByText('waiting for workers').waitFor()
    await ada.page.getByRole('status', { name: 'workers' }).getByText('3 events are').waitFor()
    expect(await ada.messages()).toEqual(['Ada: before the restart'])

    await system!.startWorker()
    await expectSameConversation(ada, bob, { Ada: ['before the restart', ...meanwhile.Ada], Bob: meanwhile.Bob })
    await ada.page.locator('[data-pending]').first().waitFor({ state: 'detached' })
    await ada.page.getByRole('status', { name: 'workers' }).waitFor({ state: 'detached' })
    expect(await ada.statuses()).toEqual(['connected'])
    expect(await bob.statuses()).toEqual(['connected'])
    expect([...ada.errors, ...bob.errors]).toEqual([])
  })

  it('shows a message with script and HTML markup as text', async () => {
    const [ada, bob] = await twoPeopleIn('markup')
    const markup = '<script>window.injected = 1</script><b>bold</b> <img src="x" onerror="window.injected = 2"> & &amp;'

    await ada.say(markup)
    await ada.waitForMessages([`Ada: ${markup}`])
    await bob.waitForMessages([`Ada: ${markup}`])

    for (const person of [ada, bob]) {
      expect(await person.messages()).toEqual([`Ada: ${markup}`])
      expect(await person.page.locator('.messages .text b, .messages .text img, .messages .text script').count()).toBe(0)
      expect(await person.page.evaluate(() => (window as unknown as { injected?: number }).injected)).toBeUndefined()
    }
  })

  it('refuses an empty or over-long message in the page, with the reason, and sends nothing', async () => {
    const ada = await open('Ada')
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
    const ada = await open('Ada', { width: 390, height: 760 })
    await ada.signIn()
    await ada.join('phones')
    await ada.say('Typed on a phone, with a rather long line that must wrap rather than push the page sideways: https://example.com/a/very/long/address/without/any/spaces/in/it/at/all')
    await ada.waitForMessages(['Ada: Typed on a phone, with a rather long line that must wrap rather than push the page sideways: https://example.com/a/very/long/address/without/any/spaces/in/it/at/all'])

    const overflowing = await ada.page.evaluate(() =>
      [document.documentElement, ...document.querySelectorAll('.messages, .rooms, .members, .composer')]
        .filter((e) => e.scrollWidth > e.clientWidth)
        .map((e) => e.className || e.tagName))
    expect(overflowing).toEqual([])
    for (const control of [ada.page.getByLabel('message', { exact: true }), ada.page.getByRole('button', { name: 'Send' })]) {
      const box = (await control.boundingBox())!
      expect(box.x).toBeGreaterThanOrEqual(0)
      expect(box.x + box.width).toBeLessThanOrEqual(390)
      expect(box.y + box.height).toBeLessThanOrEqual(760)
    }
    await ada.page.screenshot({ path: join(resultsDir, 'phone.png') })
  })
})
