import type { Browser } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import { launchBrowser, Person } from './browser'
import { ChatSystem } from './system'

describe('The chat in a real browser when its hub instance dies', () => {
  let system: ChatSystem | undefined
  let browser: Browser | undefined
  const people: Person[] = []

  beforeAll(async () => {
    system = await ChatSystem.start(inject('broker'), inject('postgres'), 'failover', { secondHub: true })
    browser = await launchBrowser()
  })

  afterEach(async () => {
    await Promise.all(people.splice(0).map((p) => p.close()))
  })

  afterAll(async () => {
    try {
      await browser?.close()
    } finally {
      await system?.dispose()
    }
  })

  it('keeps the page open while its hub instance is killed and another serves it: nothing lost, nothing shown twice', async () => {
    // Ada reaches the hubs through the failover front (the first hub while it lives); Bob is on the second.
    const ada = await Person.open(browser!, system!.appUrl, 'Ada')
    const bob = await Person.open(browser!, system!.secondHubAppUrl!, 'Bob')
    people.push(ada, bob)
    for (const person of [ada, bob]) {
      await person.signIn()
      await person.join('failover')
    }
    await ada.say('before the kill')
    await bob.waitForMessages(['Ada: before the kill'])
    await ada.page.evaluate(() => ((window as unknown as { samePage: boolean }).samePage = true))

    // The first hub dies; until the test lets it, Ada cannot reach the second, so she misses what Bob says.
    system!.proxy.refusing = true
    system!.hub.kill()
    await ada.waitForStatus('reconnecting')
    const meanwhile = ['said while Ada was away', 'and again', 'and a third time']
    await bob.sayAll(meanwhile)
    await bob.waitForMessages(['Ada: before the kill', ...meanwhile.map((t) => `Bob: ${t}`)])
    system!.proxy.refusing = false

    await ada.waitForStatus('connected')
    await ada.say('back on the other hub')
    const expected = ['Ada: before the kill', ...meanwhile.map((t) => `Bob: ${t}`), 'Ada: back on the other hub']
    await ada.waitForMessages(expected)
    await bob.waitForMessages(expected)

    expect(await ada.messages()).toEqual(expected)
    expect(await bob.messages()).toEqual(expected)
    const seqs = await ada.seqs()
    expect(new Set(seqs).size).toBe(seqs.length)
    expect((await ada.members()).sort()).toEqual(['Ada', 'Bob'])
    const statuses = await ada.statuses()
    expect(statuses[0]).toBe('connected')
    expect(statuses).toContain('reconnecting')
    expect(statuses).not.toContain('disconnected')
    expect(statuses.at(-1)).toBe('connected')
    expect(await bob.statuses()).toEqual(['connected'])
    expect(await ada.page.evaluate(() => (window as unknown as { samePage?: boolean }).samePage)).toBe(true)
    expect(await ada.page.getByText('signed in as Ada').count()).toBe(1)
    expect([...ada.errors, ...bob.errors]).toEqual([])
  })
})
