import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'
import { hubProxy, quietProxyLogger } from './hubProxy.ts'

// `vite preview` serves the built app and carries /hub (WebSocket included) to the hub, so the
// page and the hub share one origin. HUB_URL names the hub; scripts/start and the browser tests
// set it.
const proxy = hubProxy(process.env.HUB_URL ?? 'http://127.0.0.1:5000')

export default defineConfig({
  plugins: [react()],
  customLogger: quietProxyLogger(),
  server: { proxy },
  preview: { proxy },
})
