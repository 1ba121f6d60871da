import type { Browser } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import { launchBrowser, Person } from './browser'
import { ChatSystem } from './system'

describe('The chat in a real browser through a network blip, built with stateful reconnect', () => {
  let system: ChatSystem | undefined
  let browser: Browser | undefined
  const people: Person[] = []

  beforeAll(async () => {
    system = await ChatSystem.start(inject('broker'), inject('postgres'), 'blip', { statefulApp: true })
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

  it('keeps the same connection while the network drops and comes back, and replays what was sent meanwhile', async () => {
    // Ada's page reaches the hub through the front the test breaks; Bob's goes straight to it.
    const ada = await Person.open(browser!, system!.appUrl, 'Ada')
    const bob = await Person.open(browser!, system!.directAppUrl, 'Bob')
    people.push(ada, bob)
    for (const person of [ada, bob]) {
      await person.signIn()
      await person.join('blip')
    }
    await ada.say('before the blip')
    await bob.waitForMessages(['Ada: before the blip'])

    system!.proxy.cut()
    const meanwhile = ['said while the link was down', 'and again']
    await bob.sayAll(meanwhile)
    const expected = ['Ada: before the blip', ...meanwhile.map((t) => `Bob: ${t}`)]
    await bob.waitForMessages(expected)
    system!.proxy.release()

    await ada.waitForMessages(expected)
    await ada.say('still the same connection')
    expected.push('Ada: still the same connection')
    // Each page gets its own copy of the reply, Ada's through the front: wait for both.
    await Promise.all([ada.waitForMessages(expected), bob.waitForMessages(expected)])

    expect(await ada.messages()).toEqual(expected)
    expect(await bob.messages()).toEqual(expected)
    // Stateful reconnect happens under the connection: it never left "connected", so the page
    // never resumed or signed in again.
    expect(await ada.statuses()).toEqual(['connected'])
    expect((await ada.members()).sort()).toEqual(['Ada', 'Bob'])
    expect([...ada.errors, ...bob.errors]).toEqual([])
  })
})
