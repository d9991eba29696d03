import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The API runs on its own port in development (`npm start`); the dev server forwards to it so the
// dashboard keeps using same-origin URLs, as it does when the API serves the built files.
const API = 'http://localhost:8080';

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: {
      '/api': { target: API, ws: true },
      '/metrics': { target: API },
    },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
  },
});
