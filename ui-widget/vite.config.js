// Builds the widget as one ES module, dist/exectime-widget.js: Svelte, uPlot and every
// stylesheet are inside it (component CSS is injected at runtime into the shadow root of
// <exectime-stats>, or into the document's head when the component is used directly), so
// a page needs a single <script type="module"> and nothing else.
import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

export default defineConfig({
  plugins: [
    svelte({
      configFile: false, // no svelte.config.js: the options are here
      emitCss: false, // CSS stays in the JS and is injected where the component mounts
      compilerOptions: { runes: true },
    }),
  ],
  // Under Vitest, resolve Svelte's browser build so components mount in jsdom.
  resolve: process.env.VITEST ? { conditions: ['browser'] } : undefined,
  build: {
    target: 'es2022',
    outDir: 'dist',
    emptyOutDir: true,
    minify: 'oxc',
    sourcemap: false,
    reportCompressedSize: true,
    cssCodeSplit: false,
    lib: {
      entry: 'src/index.js',
      formats: ['es'],
      fileName: () => 'exectime-widget.js',
    },
    rolldownOptions: {
      // Browsers load this file as is (no bundler after us), so minify it fully; Vite's
      // library default keeps whitespace for downstream bundlers' tree-shaking.
      output: {
        minify: true,
        comments: { legal: true, annotation: false, jsdoc: false },
        banner:
          '/*! exectime dashboard widget <exectime-stats>. Bundles Svelte (MIT, (c) Svelte contributors, ' +
          'https://svelte.dev) and uPlot (MIT, (c) Leon Sorokin, https://github.com/leeoniya/uPlot). */',
      },
    },
  },
  test: {
    include: ['test/**/*.test.js'],
    environment: 'node',
    restoreMocks: true,
  },
});
