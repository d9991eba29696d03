import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(p, import.meta.url));

// Workspaces import each other by package name; tests run against the sources, not the builds.
export default defineConfig({
  resolve: {
    alias: {
      '@cctv/core': src('./core/src/index.ts'),
      '@cctv/camera-node': src('./camera-node/src/index.ts'),
      '@cctv/sfu': src('./sfu/src/index.ts'),
      '@cctv/recorder': src('./recorder/src/index.ts'),
      '@cctv/signaling': src('./signaling/src/index.ts'),
    },
  },
  test: {
    include: ['*/src/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**', 'web/**'],
    globalSetup: ['./test/globalSetup.ts'],
    setupFiles: ['./test/setup.ts'],
    pool: 'forks',
    // graphql-ws imports graphql's ESM build; run through Vite like our sources, it shares their one copy
    // of graphql (otherwise the schema comes "from another module or realm").
    server: { deps: { inline: ['graphql-ws'] } },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 20_000,
    // Real ffmpeg, UDP and browsers: tests of one file run in order, files in parallel.
    fileParallelism: true,
    reporters: ['default'],
  },
});
