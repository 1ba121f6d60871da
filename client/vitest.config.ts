import { defineConfig } from 'vitest/config'

// Unit tests of the client's logic: the protocol wrapper, message merging, the chat state and
// input validation. The browser tests have their own config (vitest.e2e.config.ts).
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
})
