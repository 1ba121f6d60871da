import { defineConfig } from 'vitest/config'

// Browser tests: Debian's Chromium through playwright-core, against the real hub, workers and
// broker, one after another (they start and stop real processes).
export default defineConfig({
  test: {
    include: ['e2e/**/*.e2e.ts'],
    environment: 'node',
    globalSetup: ['e2e/globalSetup.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
})
