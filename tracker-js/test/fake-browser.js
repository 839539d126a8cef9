// A small fake of the browser APIs the tracker uses, to run the built file in Node's vm.
// Pages ("tabs") made from one Shared see the same localStorage and cookies.
// Timers and Date are the test's (node:test mock.timers), read when a page is made.
import { readFileSync } from 'node:fs'
import vm from 'node:vm'

export const CODE = readFileSync(new URL('../dist/recsdk.min.js', import.meta.url), 'utf8')
export const ENDPOINT = 'https://shop.example/recsdk'

/** What tabs of one browser share: storage, cookies, and the network log. */
export class Shared {
  constructor() {
    this.storage = new Map()
    this.cookies = new Map()
    this.storageBroken = false // getItem/setItem throw, as in some private modes
    this.storageFull = false // setItem throws QuotaExceededError
    this.requests = [] // every fetch and beacon, in order
    this.answer = () => 200 // a status for each fetch, or throw to fail the network
  }

  get sent() {
    return this.requests.flatMap((r) => r.body.batch)
  }

  /** The events of every page's stored queue (recsdk_q<page id>). */
  queue() {
    return [...this.storage]
      .filter(([k]) => k.startsWith('recsdk_q'))
      .flatMap(([, v]) => JSON.parse(v))
  }
}

/** localStorage: keys as properties, as browsers have it (the tracker reads it so). */
function storage(shared) {
  const check = (writing) => {
    if (shared.storageBroken) throw new Error('SecurityError')
    if (writing && shared.storageFull) throw new Error('QuotaExceededError')
  }
  return new Proxy(
    {},
    {
      get(_, k) {
        check()
        return shared.storage.get(k)
      },
      set(_, k, v) {
        check(true)
        shared.storage.set(k, String(v))
        return true
      },
      deleteProperty(_, k) {
        check()
        shared.storage.delete(k)
        return true
      },
      ownKeys() {
        check()
        return [...shared.storage.keys()]
      },
      getOwnPropertyDescriptor(_, k) {
        return shared.storage.has(k)
          ? { value: shared.storage.get(k), enumerable: true, configurable: true, writable: true }
          : undefined
      },
    },
  )
}

/**
 * A page that loaded the tracker. `options.before(win)` runs before the script (a stub,
 * calls).
 */
export function page(shared = new Shared(), options = {}) {
  const listeners = {}
  const url = options.url || 'https://shop.example/p/1'
  const win = {
    location: { href: url },
    document: {
      referrer: options.referrer ?? 'https://search.example/',
      hidden: false,
      readyState: 'complete',
      get cookie() {
        return [...shared.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
      },
      set cookie(text) {
        const [pair, ...attrs] = text.split(';')
        const [name, value] = pair.split('=')
        if (attrs.some((a) => a.trim() === 'max-age=0')) shared.cookies.delete(name)
        else shared.cookies.set(name, value)
        win.cookieWrites.push(text)
      },
      querySelectorAll: () => [],
      querySelector: () => null,
    },
    navigator: {
      webdriver: false,
      sendBeacon(u, body) {
        shared.requests.push({ kind: 'beacon', url: u, body: JSON.parse(body) })
        return true
      },
    },
    history: {
      pushState(state, title, to) {
        win.location.href = new URL(to, win.location.href).href
      },
    },
    localStorage: storage(shared),
    MutationObserver: class {
      observe() {}
    },
    addEventListener(type, f) {
      ;(listeners[type] ||= []).push(f)
    },
    dispatch(type, event = {}) {
      for (const f of listeners[type] || []) f(event)
    },
    async fetch(u, init = {}) {
      if (init.method === 'POST') {
        const request = { kind: 'fetch', url: u, body: JSON.parse(init.body), keepalive: init.keepalive }
        shared.requests.push(request)
        const status = (request.status = shared.answer(request))
        return { status, ok: status < 300, json: async () => ({}) }
      }
      const status = shared.answer({ kind: 'get', url: u })
      return { status, json: async () => ({}) }
    },
    setTimeout: globalThis.setTimeout,
    setInterval: globalThis.setInterval,
    clearTimeout: globalThis.clearTimeout,
    Date: globalThis.Date,
    crypto: globalThis.crypto,
    URL,
    URLSearchParams,
    cookieWrites: [],
    ...options.globals,
  }
  win.window = win
  if (options.navigator) Object.assign(win.navigator, options.navigator)
  vm.createContext(win)
  win.globalsBefore = [...Object.keys(win), 'globalsBefore']
  options.before?.(win)
  vm.runInContext(CODE, win)
  return win
}

/** The loader snippet's stub, as a page defines it before the script arrives. */
export function stub(win) {
  vm.runInContext(
    'window.recsdk=window.recsdk||function(){(window.recsdk.q=window.recsdk.q||[]).push(arguments)}',
    win,
  )
}

/** Let pending promises (fetch answers) settle. */
export const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve))
}
