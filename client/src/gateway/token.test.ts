import { describe, expect, it } from 'vitest'
import { takeAccessToken } from './token'

class MemoryStorage {
  readonly items = new Map<string, string>()
  getItem(key: string) {
    return this.items.get(key) ?? null
  }
  setItem(key: string, value: string) {
    this.items.set(key, value)
  }
}

describe('takeAccessToken', () => {
  it('takes the token from the fragment, keeps it for the tab and clears it from the address', () => {
    const storage = new MemoryStorage()
    const replaced: string[] = []

    const token = takeAccessToken({ hash: '#access_token=abc.def.ghi&token_type=Bearer', pathname: '/', search: '?x=1' }, storage,
      { replaceState: (_data: unknown, _unused: string, url?: string | URL | null) => replaced.push(String(url)) })

    expect(token).toBe('abc.def.ghi')
    expect(storage.items.get('access_token')).toBe('abc.def.ghi')
    expect(replaced).toEqual(['/?x=1'])
  })

  it('finds the kept token after a reload, and none in demo mode', () => {
    const storage = new MemoryStorage()
    expect(takeAccessToken({ hash: '', pathname: '/', search: '' }, storage)).toBeUndefined()

    storage.setItem('access_token', 'kept')
    expect(takeAccessToken({ hash: '', pathname: '/', search: '' }, storage)).toBe('kept')
  })
})
