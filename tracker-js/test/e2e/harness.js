// What the browser tests run on: the real Python collector (collector.py) in a child
// process, a Node server for the shop's pages on another origin, and Debian's Chromium.
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

export const CHROMIUM = '/usr/bin/chromium'
export const PYTHON = new URL('../../../.venv/bin/python', import.meta.url).pathname
const SCRIPT = new URL('collector.py', import.meta.url).pathname
const TRACKER = new URL('../../dist/recsdk.min.js', import.meta.url)
export const LOADER = readFileSync(new URL('../../src/loader.html', import.meta.url), 'utf8')

/** Why the browser tests cannot run on this machine, or null when they can. */
export function missing() {
  if (!existsSync(CHROMIUM)) return `no ${CHROMIUM}: apt-get install -y chromium`
  if (!existsSync(PYTHON)) return `no ${PYTHON}: the repository's virtual environment (bash .ci/run)`
  return null
}

/** The real collector over a fresh SQLite file, restartable on the same port and file. */
export class Collector {
  constructor({ origins = [], dropBots = false, delay = 0, needKey = false } = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'recsdk-e2e-'))
    this.db = join(this.dir, 'events.db')
    this.args = ['--db', this.db, ...origins.flatMap((o) => ['--origin', o])]
    if (dropBots) this.args.push('--drop-bots')
    if (delay) this.args.push('--delay', String(delay))
    if (needKey) this.args.push('--need-key')
    this.port = 0
  }

  get url() {
    return `http://127.0.0.1:${this.port}/recsdk`
  }

  async start() {
    const child = spawn(PYTHON, [SCRIPT, ...this.args, '--port', String(this.port)], {
      stdio: ['ignore', 'pipe', process.env.E2E_DEBUG ? 'inherit' : 'pipe'],
    })
    this.child = child
    let errors = ''
    child.stderr?.on('data', (chunk) => {
      errors += chunk
    })
    const line = await new Promise((resolve, reject) => {
      let out = ''
      child.stdout.on('data', (chunk) => {
        out += chunk
        if (out.includes('\n')) resolve(out.split('\n')[0])
      })
      child.on('exit', (code) => reject(new Error(`collector exited (${code}): ${errors}`)))
    })
    this.port = JSON.parse(line).port
    return this
  }

  async stop() {
    const child = this.child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.on('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }

  async close() {
    await this.stop()
    rmSync(this.dir, { recursive: true, force: true })
  }

  /** What the store holds: {events, links, stats, recs, posts}. */
  async state() {
    const response = await fetch(`http://127.0.0.1:${this.port}/__test/events`)
    return response.json()
  }

  /** Poll until `check(state)` is true; return that state, or fail with the last one. */
  async waitFor(check, what, timeout = 15000) {
    const end = Date.now() + timeout
    let state
    while (Date.now() < end) {
      state = await this.state()
      if (check(state)) return state
      await sleep(100)
    }
    const seen = state.events.map((e) => `${e.type}:${e.item_id}@${e.context?.page_url}`)
    throw new Error(`timed out waiting for ${what}; the store holds ${JSON.stringify(seen)}`)
  }
}

/** The shop's pages, served from another origin than the collector's. */
export class Pages {
  constructor() {
    this.pages = new Map()
    this.server = http.createServer(async (req, res) => {
      const url = new URL(req.url, 'http://x')
      if (url.pathname === '/recsdk.min.js') {
        await sleep(Number(url.searchParams.get('delay') || 0))
        res.writeHead(200, { 'Content-Type': 'text/javascript', 'Cache-Control': 'no-store' })
        res.end(readFileSync(TRACKER))
        return
      }
      const html = this.pages.get(url.pathname) ?? '<!doctype html><title>elsewhere</title>'
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' })
      res.end(html)
    })
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    this.port = this.server.address().port
    return this
  }

  get origin() {
    return `http://127.0.0.1:${this.port}`
  }

  /** Another origin on the same server (a page without the tracker). */
  get elsewhere() {
    return `http://localhost:${this.port}/elsewhere`
  }

  /** Serve a page at `path` that loads the tracker with the documented snippet. */
  add(path, { init, body = '', head = '', before = '', src = `${this.origin}/recsdk.min.js` }) {
    this.pages.set(
      path,
      `<!doctype html><html><head><meta charset="utf-8"><title>${path}</title>${before}` +
        `${snippet(src, init)}${head}</head><body>${body}</body></html>`,
    )
    return this.origin + path
  }

  async close() {
    this.server.closeAllConnections()
    await new Promise((resolve) => this.server.close(resolve))
  }
}

/** The loader snippet of src/loader.html (as docs/tracker-js.md shows it) for a test page. */
export function snippet(src, init) {
  const url = '"https://shop.example/recsdk/recsdk.js"'
  const options = '{endpoint:"https://shop.example/recsdk",key:"pk_..."}'
  if (!LOADER.includes(url) || !LOADER.includes(options)) throw new Error('loader.html changed')
  return LOADER.replace(url, JSON.stringify(src)).replace(options, JSON.stringify(init))
}
