// Builds dist/recsdk.min.js from src/ with esbuild; with --ship, also copies it into the
// Python package (recsdk/static/recsdk.min.js), where a test checks it matches a fresh build.
import { build } from 'esbuild'
import { minify } from 'terser'
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'

export const DIST = new URL('dist/recsdk.min.js', import.meta.url)
export const SHIPPED = new URL('../recsdk/static/recsdk.min.js', import.meta.url)

/** The minified tracker, as a string: esbuild bundles and minifies, terser squeezes more. */
export async function bundle() {
  const result = await build({
    entryPoints: [new URL('src/index.js', import.meta.url).pathname],
    bundle: true,
    minify: true,
    format: 'iife',
    target: 'es2021',
    legalComments: 'none',
    write: false,
  })
  const squeezed = await minify(result.outputFiles[0].text, {
    ecma: 2021,
    toplevel: true,
    compress: { passes: 3, unsafe: true, unsafe_arrows: true, unsafe_methods: true, pure_getters: true },
    format: { comments: false },
  })
  return squeezed.code
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const code = await bundle()
  mkdirSync(new URL('dist/', import.meta.url), { recursive: true })
  writeFileSync(DIST, code)
  const gz = gzipSync(code, { level: 9 }).length
  console.log(`dist/recsdk.min.js: ${code.length} bytes, ${gz} gzipped (-9)`)
  if (process.argv.includes('--ship')) {
    mkdirSync(new URL('.', SHIPPED), { recursive: true })
    copyFileSync(DIST, SHIPPED)
    console.log('copied to recsdk/static/recsdk.min.js')
  }
}
