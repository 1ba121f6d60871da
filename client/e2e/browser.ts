// Debian's Chromium driven by playwright-core: no browser download, which cannot work here.
import { chromium, type Browser, type Page } from 'playwright-core'
import { join } from 'node:path'
import { resultsDir, waitUntil } from './system'

export const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath,
    headless: true,
    // Without the background-networking flags Chromium keeps dialling Google, which this
    // machine's closed network refuses; root needs --no-sandbox.
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  })
}

/** One person: a browser context of their own (own storage), at a phone's or a desktop's width. */
export class Person {
  readonly page: Page
  readonly name: string
  /** Uncaught errors in the page: a test that ends with any has found a bug. */
  readonly errors: string[] = []
  /** The event types this page sent to the hub (`Send(type, …)`), in order, across reloads. */
  readonly sent: string[] = []

  private constructor(page: Page, name: string) {
    this.page = page
    this.name = name
  }

  static async open(browser: Browser, url: string, name: string, viewport = { width: 1100, height: 700 }): Promise<Person> {
    const context = await browser.newContext({ viewport })
    const page = await context.newPage()
    const person = new Person(page, name)
    page.on('pageerror', (error) => person.errors.push(error.message))
    // SignalR's JSON protocol: one invocation per record, ended by 0x1e.
    page.on('websocket', (socket) => socket.on('framesent', ({ payload }) => {
      for (const record of String(payload).split('\x1e').filter(Boolean)) {
        const message = JSON.parse(record) as { target?: string; arguments?: unknown[] }
        if (message.target === 'Send' && typeof message.arguments?.[0] === 'string') person.sent.push(message.arguments[0])
      }
    }))
    await page.goto(url)
    await person.waitForStatus('connected')
    // Every change of the connection indicator, from here on, for "never left connected".
    await page.evaluate(() => {
      const indicator = document.querySelector('[aria-label="connection"]')!
      const seen: string[] = [indicator.getAttribute('data-status')!]
      ;(window as unknown as { statuses: string[] }).statuses = seen
      new MutationObserver(() => seen.push(indicator.getAttribute('data-status')!)).observe(indicator, { attributes: true })
    })
    return person
  }

  async signIn(typedName = this.name): Promise<void> {
    await this.page.getByLabel('Your name').fill(typedName)
    await this.page.getByRole('button', { name: 'Sign in' }).click()
    await this.page.getByText(`signed in as ${this.name}`).waitFor()
  }

  async join(room: string): Promise<void> {
    const field = this.page.getByLabel('New room')
    await field.fill(room)
    await field.press('Enter')
    await this.page.getByRole('heading', { name: `# ${room}` }).waitFor()
  }

  close(): Promise<void> {
    return this.page.context().close()
  }

  async say(text: string): Promise<void> {
    const box = this.page.getByLabel('message', { exact: true })
    await box.fill(text)
    await box.press('Enter')
  }

  /** Sends each text in turn, as fast as the page takes them, without waiting for replies. */
  async sayAll(texts: string[]): Promise<void> {
    for (const text of texts) await this.say(text)
  }

  async seqs(): Promise<number[]> {
    return await this.page.locator('.messages li[data-seq]').evaluateAll((items) => items.map((li) => Number(li.getAttribute('data-seq'))))
  }

  /** The room's confirmed messages as "from: text", in the order the page shows them. */
  async messages(): Promise<string[]> {
    return await this.page.locator('.messages li[data-seq]').evaluateAll((items) =>
      items.map((li) => `${li.querySelector('.from')!.textContent}: ${li.querySelector('.text')!.textContent}`))
  }

  async waitForMessages(expected: string[], timeoutMs = 30_000): Promise<void> {
    let last: string[] = []
    try {
      await waitUntil(async () => {
        last = await this.messages()
        return last.length >= expected.length
      }, `${this.name} sees ${expected.length} messages`, timeoutMs)
    } catch (error) {
      // What the page shows instead, to tell a message that never came from a page that moved elsewhere.
      const shown = await this.describe()
      await this.page.screenshot({ path: join(resultsDir, `failed-${this.name}-${Date.now()}.png`), fullPage: true }).catch(() => undefined)
      throw new Error(`${(error as Error).message} (has: ${JSON.stringify(last)}; the page: ${shown})`, { cause: error })
    }
  }

  /** The page's state in one line: connection, who is signed in, the room shown, every line of its list, errors. */
  async describe(): Promise<string> {
    return await this.page.evaluate(() => {
      const text = (selector: string) => document.querySelector(selector)?.textContent?.trim() ?? '(none)'
      const lines = [...document.querySelectorAll('.messages li')].map((li) => `${li.getAttribute('data-seq') ?? '-'}:${li.textContent?.trim()}`)
      return JSON.stringify({
        status: document.querySelector('[aria-label="connection"]')?.getAttribute('data-status'),
        statuses: (window as unknown as { statuses?: string[] }).statuses,
        heading: text('h2'),
        me: [...document.querySelectorAll('body *')].find((e) => e.children.length === 0 && e.textContent?.startsWith('signed in as'))?.textContent ?? '(not signed in)',
        lines,
        alerts: [...document.querySelectorAll('[role="alert"]')].map((a) => a.textContent?.trim()),
      })
    }).catch((error: Error) => `(could not read the page: ${error.message})`)
  }

  async members(): Promise<string[]> {
    return (await this.page.locator('[aria-label="members"] li').allTextContents()).map((m) => m.replace(' (you)', ''))
  }

  async waitForStatus(status: string): Promise<void> {
    await this.page.locator(`[aria-label="connection"][data-status="${status}"]`).waitFor()
  }

  /** Every value the connection indicator took since the page connected. */
  async statuses(): Promise<string[]> {
    return await this.page.evaluate(() => (window as unknown as { statuses: string[] }).statuses)
  }
}
