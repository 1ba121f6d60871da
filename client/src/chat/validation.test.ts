import { describe, expect, it } from 'vitest'
import { checkName, checkRoom, checkText, maxTextLength } from './validation'

describe('input validation', () => {
  it('accepts a name of 1 to 32 characters after trimming', () => {
    expect(checkName('  Ada ')).toBeNull()
    expect(checkName('x'.repeat(32))).toBeNull()
  })

  it('refuses an empty, over-long or control-character name with the reason', () => {
    expect(checkName('   ')).toBe('Enter a name.')
    expect(checkName('x'.repeat(33))).toContain('at most 32 characters (this one has 33)')
    expect(checkName('A\u0007da')).toContain('control characters')
  })

  it('accepts room names the worker accepts and refuses the others', () => {
    expect(checkRoom('lobby')).toBeNull()
    expect(checkRoom('Café 2_b-c')).toBeNull()
    expect(checkRoom('')).toBe('Enter a room name.')
    expect(checkRoom('-lobby')).toContain('starts with a letter or digit')
    expect(checkRoom('lob<by>')).toContain('only letters, digits')
    expect(checkRoom('r'.repeat(33))).toContain('at most 32 characters')
  })

  it('refuses an empty or over-long message with the reason', () => {
    expect(checkText('hello')).toBeNull()
    expect(checkText('x'.repeat(maxTextLength))).toBeNull()
    expect(checkText(' \n ')).toBe('Type a message first.')
    expect(checkText('x'.repeat(maxTextLength + 1))).toBe('A message is at most 4000 characters (this one has 4001).')
  })
})
