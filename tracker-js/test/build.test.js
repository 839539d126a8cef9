// The shipped file: what the Python package carries is a fresh build of src/, and it fits
// the size budget; the loader snippet that docs/tracker-js.md shows is the tested one.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { gzipSync } from 'node:zlib'
import { DIST, SHIPPED, bundle } from '../build.mjs'

const BUDGET = 2048 // bytes after gzip -9: ANCHORS.md's 2.0 KB for the whole tracker

test('recsdk/static/recsdk.min.js is byte for byte a fresh build (run npm run build)', async () => {
  const fresh = await bundle()
  assert.equal(readFileSync(DIST, 'utf8'), fresh)
  assert.ok(readFileSync(SHIPPED).equals(Buffer.from(fresh)), 'rebuild with: npm run build')
})

test(`the tracker is at most ${BUDGET} bytes after gzip -9`, () => {
  const code = readFileSync(DIST)
  const size = gzipSync(code, { level: 9 }).length
  console.log(`recsdk.min.js: ${code.length} bytes, ${size} after gzip -9 (budget ${BUDGET})`)
  assert.ok(size <= BUDGET, `${size} bytes after gzip -9; the budget is ${BUDGET}`)
})

test('the loader snippet is under 600 bytes and docs/tracker-js.md shows it as tested', () => {
  const loader = readFileSync(new URL('../src/loader.html', import.meta.url), 'utf8')
  assert.ok(Buffer.byteLength(loader) < 600, `${Buffer.byteLength(loader)} bytes`)
  const docs = readFileSync(new URL('../../docs/tracker-js.md', import.meta.url), 'utf8')
  assert.ok(docs.includes('```html\n' + loader + '```'), 'docs/tracker-js.md shows src/loader.html')
})
