import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

// `vite preview` serves the built app and carries /hub (WebSocket included) to the hub, so the
// page and the hub share one origin. HUB_URL names the hub; scripts/start and the browser tests
// set it.
const hub = process.env.HUB_URL ?? 'http://127.0.0.1:5000'
const proxy = { '/hub': { target: hub, ws: true, changeOrigin: true } }

export default defineConfig({
  plugins: [react()],
  server: { proxy },
  preview: { proxy },
})
