import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import { launchBrowser, Person } from './browser'
import { ChatSystem, previewErrors, resultsDir, waitUntil } from './system'

describe('A session in a real browser: reloads, names, and the page’s looks', () => {
  let system: ChatSystem | undefined
  let browser: Browser | undefined
  const people: Person[] = []

  beforeAll(async () => {
    mkdirSync(resultsDir, { recursive: true })
    system = await ChatSystem.start(inject('broker'), inject('postgres'), 'session')
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

  it('a reload mid-conversation comes back signed in, in its rooms, with nothing missing and nothing twice', async () => {
    const [ada, bob] = await Promise.all([open('Ada'), open('Bob')])
    await ada.signIn()
    await ada.join('other')
    await ada.join('lobby')
    await bob.signIn()
    await bob.join('lobby')
    for (const [speaker, text] of [[ada, 'before 1'], [bob, 'before 2'], [ada, 'before 3']] as const) {
      await speaker.say(text)
      await bob.page.locator('.messages .text', { hasText: text }).waitFor()
    }
    await ada.waitForMessages(['Ada: before 1', 'Bob: before 2', 'Ada: before 3'])

    // Bob talks while Ada's page reloads: she must get what was said meanwhile.
    const reload = ada.page.reload()
    await bob.sayAll(['during 1', 'during 2'])
    await reload
    await ada.waitForStatus('connected')
    await ada.page.getByText('signed in as Ada').waitFor()
    await ada.page.getByRole('heading', { name: '# lobby' }).waitFor()
    const expected = ['Ada: before 1', 'Bob: before 2', 'Ada: before 3', 'Bob: during 1', 'Bob: during 2']
    await ada.waitForMessages(expected)

    await ada.say('after the reload')
    await bob.waitForMessages([...expected, 'Ada: after the reload'])
    await ada.waitForMessages([...expected, 'Ada: after the reload'])
    const seqs = await ada.seqs()
    expect(await ada.messages()).toEqual([...expected, 'Ada: after the reload'])
    expect(new Set(seqs).size).toBe(seqs.length)
    expect(await ada.page.getByRole('navigation', { name: 'rooms' }).getByRole('button', { name: /^# / }).allTextContents()).toEqual(['# other', '# lobby'])
    await waitUntil(async () => (await ada.members()).length === 2, 'Ada sees both members')
    expect((await ada.members()).sort()).toEqual(['Ada', 'Bob'])
    expect((await bob.members()).sort()).toEqual(['Ada', 'Bob'])
    // Signed in once, before the reload; after it, the session was resumed.
    expect(ada.sent.filter((t) => t === 'signIn')).toHaveLength(1)
    expect(ada.sent.filter((t) => t === 'resume')).toHaveLength(1)
    expect(ada.sent.indexOf('resume')).toBeGreaterThan(ada.sent.indexOf('signIn'))
    // The other room came back too.
    await ada.page.getByRole('button', { name: '# other' }).click()
    await ada.page.getByRole('heading', { name: '# other' }).waitFor()
    // The reload closed a WebSocket under the page server: no stack trace for that.
    expect(previewErrors.filter((e) => e.includes('ws proxy'))).toEqual([])
    expect([...ada.errors, ...bob.errors]).toEqual([])
  })

  it('refuses a name someone signed in holds, in the sign-in form, whatever its case', async () => {
    const [ada, eve] = await Promise.all([open('Ada'), open('Eve')])
    await ada.signIn()
    await eve.page.getByLabel('Your name').fill('ada')
    await eve.page.getByRole('button', { name: 'Sign in' }).click()

    await eve.page.getByRole('alert').getByText(/in use by someone signed in now/).waitFor()
    expect(await eve.page.getByRole('button', { name: 'Sign in' }).isEnabled()).toBe(true)
    await eve.signIn('Eve')
    expect([...ada.errors, ...eve.errors]).toEqual([])
  })

  it('asks for no favicon it does not have', async () => {
    const ada = await open('Ada')
    const missing: string[] = []
    ada.page.on('response', (response) => {
      if (response.status() >= 400) missing.push(`${response.status()} ${response.url()}`)
    })
    await ada.page.reload()
    await ada.waitForStatus('connected')
    const icon = await ada.page.evaluate(() => document.querySelector<HTMLLinkElement>('link[rel="icon"]')?.href)
    expect(icon).toMatch(/\/favicon\.svg$/)
    expect((await ada.page.request.get(icon!)).status()).toBe(200)
    expect(missing).toEqual([])
  })

  for (const viewport of [{ width: 1280, height: 800 }, { width: 390, height: 760 }]) {
    it(`at ${viewport.width} px: one quiet Leave per room, a placeholder that is not a value, own messages apart, a waiting bar that moves nothing`, async () => {
      const [ada, bob] = await Promise.all([open('Ada', viewport), open('Bob', viewport)])
      await ada.signIn()
      const placeholder = await ada.page.getByLabel('New room').evaluate((input: HTMLInputElement) => ({
        value: input.value,
        placeholder: input.placeholder,
        text: getComputedStyle(input).color,
        hint: getComputedStyle(input, '::placeholder').color,
        style: getComputedStyle(input, '::placeholder').fontStyle,
      }))
      expect(placeholder.value).toBe('')
      expect(placeholder.placeholder).toMatch(/^e\.g\. /)
      expect(placeholder.hint).not.toBe(placeholder.text)
      expect(placeholder.style).toBe('italic')
      await ada.join('first')
      await ada.join('looks')
      await bob.signIn()
      await bob.join('looks')
      await ada.say('mine')
      await bob.say('theirs')
      await ada.waitForMessages(['Ada: mine', 'Bob: theirs'])

      const leave = ada.page.getByRole('button', { name: /leave/i })
      expect(await leave.count()).toBe(1)
      const looks = await leave.evaluate((button) => {
        const join = document.querySelector('.new-room button')!
        return { leave: getComputedStyle(button).backgroundColor, primary: getComputedStyle(join).backgroundColor, inHeader: !!button.closest('.room-header') }
      })
      expect(looks.inHeader).toBe(true)
      expect(looks.leave).not.toBe(looks.primary)
      const bubbles = await ada.page.locator('.messages li[data-seq]').evaluateAll((items) => items.map((li) => {
        const text = li.querySelector('.text')!
        const list = li.parentElement!.getBoundingClientRect()
        const box = text.getBoundingClientRect()
        return { mine: li.classList.contains('mine'), background: getComputedStyle(text).backgroundColor, right: list.right - box.right, left: box.left - list.left }
      }))
      const [mine, theirs] = bubbles
      expect(mine.mine && !theirs.mine).toBe(true)
      expect(mine.background).not.toBe(theirs.background)
      // Own messages on the right, others' on the left.
      expect(mine.right).toBeLessThan(mine.left)
      expect(theirs.left).toBeLessThan(theirs.right)
      await ada.page.screenshot({ path: join(resultsDir, `looks-${viewport.width}.png`) })

      const layoutTop = async () => (await ada.page.locator('.layout').boundingBox())!.y
      const before = await layoutTop()
      await system!.stopAllWorkers()
      await ada.say('while no worker runs')
      const bar = ada.page.getByRole('status', { name: 'workers' })
      await bar.waitFor()
      expect(await layoutTop()).toBe(before)
      expect(await bar.evaluate((e) => getComputedStyle(e).position)).toBe('fixed')
      const box = (await bar.boundingBox())!
      expect(box.x).toBeGreaterThanOrEqual(0)
      expect(box.x + box.width).toBeLessThanOrEqual(viewport.width)
      await ada.page.screenshot({ path: join(resultsDir, `waiting-${viewport.width}.png`) })

      await system!.startWorker()
      await bar.waitFor({ state: 'detached' })
      expect(await layoutTop()).toBe(before)
      expect([...ada.errors, ...bob.errors]).toEqual([])
    })
  }
})
