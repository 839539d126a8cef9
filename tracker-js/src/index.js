/**
 * recsdk's browser tracker: `recsdk(command, ...)` is its one global name.
 *
 * Delivery: every event is written first to this page's queue in localStorage (memory when
 * storage fails), then sent in batches (10 events or 1 s) with fetch keepalive as
 * text/plain; the collector's answer removes the batch from the queue, a failure leaves it
 * there for a retry with capped backoff. pagehide / hidden pages send the queue with
 * sendBeacon and leave it stored: the next page takes over the queues that earlier pages
 * left and sends them again, with the same event ids (the store keeps each event id once).
 * Each page writes only its own queue, so tabs never overwrite each other's events
 * (localStorage has no cross-tab locking) and never send each other's queue.
 * See docs/tracker-js.md.
 */
import { uid } from './uid.js'

const d = document
const nav = navigator
const PREFIX = 'recsdk_'
const QUEUE = 'q' + uid() // this page's queue: recsdk_q<id>
const ITEM = 'data-recsdk-item'
const REC = '[data-recsdk-rec]'
// Numbers are written where they are used (one use each, fewer bytes): 200 events kept in
// the queue at most, a batch goes at 10 events or after 1 s, a session ends after 30
// minutes (18e5 ms) without events, 20 events a request, retries within 1-60 s.

let opts // init's options; undefined until init
let base // the collector's URL, e.g. https://shop.example/recsdk
let consent // 1 granted, 0 pending, -1 denied (also by Do-Not-Track); undefined until set
let dnt // Do-Not-Track or Global Privacy Control, when the shop respects them
let anon // the anonymous id, once tracking may store it
let user = 0 // the user id (undefined: none); 0 until read from storage
let pending = [] // events tracked before init or consent, in memory only
let mem = [] // the queue, also when localStorage fails
let session // "id.lastActivity" when localStorage fails
let timer
let busy // a batch is in flight from this tab, or it waits to retry
let fails = 0
let lastUrl
let referrer = d.referrer
let seen = [] // item ids whose data-recsdk-item view was sent from this document
const sent = new Set() // events this page may have put on the wire (the beacon skips them)

/** Wrap a function so that no error of ours ever reaches the page. */
const safe =
  (f) =>
  (...a) => {
    try {
      return f(...a)
    } catch {}
  }

const listen = (type, f, capture) => addEventListener(type, safe(f), capture)

const on = () => opts && consent > 0

// localStorage as an object: undefined for a missing key (getItem would say null)
const get = (k) => {
  try {
    return localStorage[PREFIX + k]
  } catch {}
}

/** Store `v` under `k` (remove it when null); return 1 when storage failed. */
const set = (k, v) => {
  try {
    v == null ? delete localStorage[PREFIX + k] : (localStorage[PREFIX + k] = v)
  } catch {
    return 1
  }
}

// The stored queue; memory when storage fails or holds no queue (JSON.parse throws).
const load = () => safe(JSON.parse)(get(QUEUE)) || mem

// When storage is full, the stale stored queue is removed and memory is used.
const save = (q) => (mem = q) && set(QUEUE, JSON.stringify(q)) && set(QUEUE)

/** Call f with each of our keys in localStorage (recsdk_...). */
const ours = (f) => {
  try {
    Object.keys(localStorage).map((k) => k.startsWith(PREFIX) && f(k))
  } catch {}
}

const cookie = (v) =>
  (d.cookie = PREFIX + 'a=' + v + ';path=/;samesite=lax;max-age=' + (v ? 34560000 : 0))

/** The session id; a new one after 30 minutes without events. */
const sessionId = () => {
  const now = Date.now()
  let [id, t] = (get('s') || session || '').split('.')
  if (!(now - t < 18e5)) id = uid()
  set('s', (session = id + '.' + now))
  return id
}

/** Start tracking once init was called and consent (if asked for) was given. */
const go = () => {
  if (on()) {
    anon = get('a') || d.cookie.match(/recsdk_a=(\w+)/)?.[1] || uid()
    set('a', anon)
    cookie(anon)
    user === 0 ? (user = get('u')) : set('u', user)
    pending.splice(0).map(add)
  }
}

/** Queue an event (stamped with ids) and send it at once or within 1 s. */
const add = (e) => {
  const q = load()
  q.push({ event_id: uid(), anonymous_id: anon, user_id: user, session_id: sessionId(), ...e })
  save(q.slice(-200))
  q.length < 10 ? later(1e3) : flush()
}

const track = (type, p = {}) => {
  const e = {
    ...p,
    type,
    timestamp: Date.now() / 1e3,
    context: {
      page_url: location.href,
      referrer,
      webdriver: nav.webdriver || undefined, // the collector drops automated browsers
      ...p.context,
    },
  }
  // An event that JSON cannot carry (a cycle, a BigInt) throws here, before it is kept.
  JSON.stringify(e) && (on() ? add(e) : consent < 0 || (pending.length < 200 && pending.push(e)))
}

const later = (ms) =>
  timer ||
  (timer = setTimeout(
    safe(() => {
      timer = 0
      flush()
    }),
    ms,
  ))

const body = (batch) =>
  JSON.stringify({
    key: opts.key,
    batch: batch.map((e) => sent.add(e.event_id) && e),
    sent_at: Date.now() / 1e3,
  })

/** Send the head of the queue; remove it when the collector has handled it. */
const flush = async () => {
  const batch = load().slice(0, 20)
  let ok
  if (on() && !busy && batch[0]) {
    busy = 1
    try {
      const b = body(batch)
      const r = await fetch(base + '/events', { method: 'POST', body: b, keepalive: b.length < 6e4 })
      // Over 64 KB, keepalive would fail. 2xx: each event stored, duplicate or rejected
      // for good; other 4xx: resending cannot help; 429, 5xx, network: retry later.
      // An answer that stored nothing: the beacon may take them. No answer (the network, or
      // the page leaving while in flight): they may have arrived; the retries send them.
      ok = (r.status < 500 && r.status != 429) || sent.clear()
    } catch {}
    if (ok) {
      busy = fails = 0
      const ids = batch.map((e) => e.event_id)
      on() && save(load().filter((e) => !ids.includes(e.event_id))) // nothing after withdrawal
      later(0) // the rest of the queue, if any
    } else {
      setTimeout(
        safe(() => {
          busy = 0
          flush()
        }),
        Math.min(6e4, 1e3 * 2 ** fails++ * (1 + Math.random())),
      )
    }
  }
}

/**
 * The page is going away or hidden: hand to sendBeacon what is not on the wire yet (a
 * batch in flight goes on with keepalive). It all stays queued until a fetch is answered.
 */
const beacon = () => {
  if (on()) {
    const q = load().filter((e) => !sent.has(e.event_id))
    while (q[0] && nav.sendBeacon(base + '/events', body(q.splice(0, 20))));
  }
}

/** A page view, when the URL (without its hash) changed. */
const page = () => {
  const url = location.href.split('#')[0]
  if (url != lastUrl) {
    if (lastUrl) referrer = lastUrl
    lastUrl = url
    track('page')
  }
}

/**
 * A view for each data-recsdk-item outside a recommendation list, once a document: in a
 * single-page app an item seen before is not counted again (an element the router has not
 * replaced yet must not count for the new URL).
 */
const scan = () =>
  d.querySelectorAll(`[${ITEM}]`).forEach((el) => {
    const id = el.dataset.recsdkItem
    el.closest(REC) ||
      seen.includes(id) ||
      (seen.push(id), track('view', { item_id: id }))
  })

/** A click on a data-recsdk-item inside a data-recsdk-rec list. */
const click = (ev) => {
  const el = ev.target.closest(`[${ITEM}]`)
  const list = el?.closest(REC)
  if (list) {
    track('click', { item_id: el.dataset.recsdkItem, rec_id: list.dataset.recsdkRec })
    flush()
  }
}

/**
 * Fetch a recommendation list and render it into a container (a CSS selector) by the
 * <template> inside it: {field} placeholders take the item's fields, HTML-escaped, and
 * the first element of each item gets data-recsdk-item, so that clicks are attributed.
 */
const recommend = (o) => {
  const el = d.querySelector(o.el)
  const id = o.item_id
  const query = new URLSearchParams({ k: o.k || 4 })
  // The shopper's ids only while tracking is on (consent given, or none asked for; anon is
  // set then): before consent, or after a denial, the list is not personal (trending items).
  id || !on() || (user && query.set('user_id', user), query.set('anonymous_id', anon))
  opts.key && query.set('key', opts.key)
  fetch(base + (id ? '/similar/' + encodeURIComponent(id) : '/recommendations') + '?' + query)
    .then((r) => r.json())
    .then((list) => {
      const tpl = el.querySelector('template')
      // An error's answer has no rec_id: this throws, and the container stays as it was.
      el.dataset.recsdkRec = list.rec_id.trim()
      el.innerHTML =
        tpl.outerHTML +
        list.items
          .map((item) =>
            tpl.innerHTML
              .replace(/<\w+/, `$& ${ITEM}="{item_id}"`)
              .replace(/\{(\w+)\}/g, (_, k) =>
                ('' + (item[k] ?? '')).replace(/[&<>"']/g, (c) => '&#' + c.charCodeAt() + ';'),
              ),
          )
          .join('')
      o.done?.(list, el)
    })
    // Whatever failed (the request, its answer, rendering, done) ends here, and nothing
    // reaches the page (safe(error) only makes a function).
    .catch(safe)
}

const commands = {
  __proto__: null, // recsdk('toString') is no command: an event, like any unknown name
  init(o) {
    if (!opts) {
      base = o.endpoint || '/recsdk' // the collector's default prefix, on this site
      dnt = o.respectDNT && (nav.doNotTrack == 1 || nav.globalPrivacyControl)
      consent = dnt ? -1 : (consent ?? +!o.consent)
      opts = o
      // Take over the queues that earlier pages left (or other tabs hold: then both send
      // those events, and the store keeps each event id once). Sent once tracking may.
      ours((k, v) => {
        if (k[7] == 'q') {
          v = localStorage[k]
          delete localStorage[k]
          save(load().concat(JSON.parse(v)))
        }
      })
      go()
      // Listeners on window: visibilitychange and click bubble up to it from the document.
      listen('pagehide', beacon)
      listen('popstate', page)
      listen('visibilitychange', () => d.hidden && beacon())
      listen('click', click, 1) // capture
      const push = history.pushState
      history.pushState = function () {
        push.apply(this, arguments)
        safe(page)()
      }
      page()
      // Elements that come later (the rest of the page, SPA routes): a look every second
      // costs the page less than a MutationObserver's call on every change would.
      scan()
      setInterval(safe(scan), 1e3)
    }
  },
  // Only 'granted' and 'denied' count. Under Do-Not-Track, init set consent to -1 for good.
  consent(v) {
    if (v === 'granted') dnt || ((consent = 1), go())
    else if (v === 'denied') {
      consent = -1
      pending = []
      mem = []
      anon = 0
      ours((k) => delete localStorage[k])
      cookie('')
    }
  },
  identify(u) {
    // A string or a number (as the collector takes it), or null to log out; else nothing
    // (a Symbol throws in the test, before anything changed).
    if (u == null || (u && (u + '' === u || u === +u))) {
      user = u ? '' + u : undefined
      on() && set('u', user)
      u && track('x-identify')
    }
  },
  search(p) {
    track('search', { properties: p })
  },
  purchase({ items, ...rest }) {
    items.map((line) => track('purchase', { ...rest, ...line }))
  },
  recommend,
}

const api = safe((command, arg) =>
  commands[command] ? commands[command](arg) : track(command, arg),
)

if (!window.recsdk?.v) {
  const queued = window.recsdk?.q // the loader's stub holds the calls made before
  api.v = 1
  window.recsdk = api
  queued?.map((args) => api(...args))
}
