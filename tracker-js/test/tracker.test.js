// Unit tests of the built tracker (dist/recsdk.min.js) in a fake browser (fake-browser.js):
// batching, retries, the stored queue, consent, identity, sessions, SPA pages, manners.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { afterEach, beforeEach, describe, mock, test } from 'node:test'
import { ENDPOINT, Shared, page, settle, stub } from './fake-browser.js'

const schema = JSON.parse(
  readFileSync(new URL('../../recsdk/schema/event.schema.json', import.meta.url), 'utf8'),
)
const START = Date.UTC(2026, 10, 30, 12)

beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: START }))
afterEach(() => mock.timers.reset())

const tick = async (ms) => {
  mock.timers.tick(ms)
  await settle()
}

/** A page whose tracker was initialised (plus any calls made before the script). */
const tracked = (shared, init = {}, options = {}) =>
  page(shared, {
    ...options,
    before(win) {
      stub(win)
      win.recsdk('init', { endpoint: ENDPOINT, key: 'pk_test', ...init })
      options.before?.(win)
    },
  })

/** Whether an event fits the wire format's schema (the parts JSON Schema can say here). */
function checkSchema(event) {
  for (const key of Object.keys(event)) assert.ok(key in schema.properties, `unknown field ${key}`)
  assert.ok(event.user_id || event.anonymous_id)
  assert.match(event.event_id, new RegExp(schema.properties.event_id.pattern))
  assert.equal(typeof event.timestamp, 'number')
  assert.ok(event.timestamp >= schema.properties.timestamp.anyOf[2].minimum)
  for (const id of ['user_id', 'anonymous_id', 'item_id', 'order_id', 'session_id', 'rec_id'])
    if (id in event) assert.ok(typeof event[id] === 'string' && event[id].length <= 256)
}

describe('delivery', () => {
  test('a page event on load, sent within a second as text JSON with the key', async () => {
    const shared = new Shared()
    tracked(shared)
    await tick(999)
    assert.equal(shared.requests.length, 0)
    await tick(1)
    assert.equal(shared.requests.length, 1)
    const [request] = shared.requests
    assert.equal(request.url, `${ENDPOINT}/events`)
    assert.equal(request.kind, 'fetch')
    assert.equal(request.keepalive, true)
    assert.equal(request.body.key, 'pk_test')
    assert.equal(request.body.sent_at, START / 1000 + 1)
    const [event] = request.body.batch
    assert.equal(event.type, 'page')
    assert.equal(event.timestamp, START / 1000)
    assert.deepEqual(event.context, {
      page_url: 'https://shop.example/p/1',
      referrer: 'https://search.example/',
    })
    checkSchema(event)
    assert.deepEqual(shared.queue(), [], 'a handled batch leaves the stored queue')
  })

  test('ten events go at once; each event id is a UUID the schema accepts', async () => {
    const shared = new Shared()
    const win = tracked(shared)
    for (let i = 0; i < 8; i++) win.recsdk('view', { item_id: `sku-${i}` })
    await settle()
    assert.equal(shared.requests.length, 0)
    win.recsdk('add_to_cart', { item_id: 'sku-1', quantity: 2, price: 9.5 })
    await settle()
    assert.equal(shared.requests.length, 1)
    const batch = shared.requests[0].body.batch
    assert.deepEqual(
      batch.map((e) => e.type),
      ['page', ...Array(8).fill('view'), 'add_to_cart'],
    )
    batch.forEach(checkSchema)
    assert.equal(new Set(batch.map((e) => e.event_id)).size, 10)
    for (const e of batch) assert.match(e.event_id, /^[0-9a-f]{12}7[0-9a-f]{3}[89ab][0-9a-f]{15}$/)
  })

  test('calls made before the script loaded are replayed in order', async () => {
    const shared = new Shared()
    page(shared, {
      before(win) {
        stub(win)
        win.recsdk('view', { item_id: 'early' })
        win.recsdk('init', { endpoint: ENDPOINT })
        win.recsdk('add_to_cart', { item_id: 'early' })
        win.recsdk('identify', 'u-1')
      },
    })
    await tick(1000)
    assert.deepEqual(
      shared.sent.map((e) => e.type),
      ['view', 'page', 'add_to_cart', 'x-identify'],
    )
    assert.equal(shared.sent.at(-1).user_id, 'u-1')
  })

  test('failures keep the events and retry with backoff, with the same event ids', async () => {
    const shared = new Shared()
    const statuses = [503, 429, 0, 200]
    shared.answer = () => {
      const status = statuses.shift()
      if (!status) throw new TypeError('Failed to fetch')
      return status
    }
    const win = tracked(shared)
    win.recsdk('view', { item_id: 'sku-1' })
    await tick(1000)
    assert.equal(shared.requests.length, 1)
    assert.equal(shared.queue().length, 2, 'kept in storage after a 503')
    await tick(999) // the first retry waits 1-2 s
    assert.equal(shared.requests.length, 1)
    await tick(1001)
    assert.equal(shared.requests.length, 2) // 429
    await tick(4000) // 2-4 s
    assert.equal(shared.requests.length, 3) // network error
    await tick(8000) // 4-8 s
    assert.equal(shared.requests.length, 4) // 200
    const ids = shared.requests.map((r) => r.body.batch.map((e) => e.event_id).join())
    assert.equal(new Set(ids).size, 1, 'every retry sends the same events')
    assert.deepEqual(shared.queue(), [])
  })

  test('a client error (4xx) drops the batch: resending could not help', async () => {
    const shared = new Shared()
    shared.answer = () => 403
    tracked(shared)
    await tick(1000)
    assert.deepEqual(shared.queue(), [])
    await tick(60000)
    assert.equal(shared.requests.length, 1)
  })

  test('the backoff never exceeds a minute', async () => {
    const shared = new Shared()
    shared.answer = () => 503
    tracked(shared)
    await tick(1000)
    for (let i = 0; i < 12; i++) await tick(60000)
    assert.equal(shared.requests.length, 13)
  })

  test('undelivered events are sent again by the next page, with the same ids', async () => {
    const shared = new Shared()
    shared.answer = () => {
      throw new TypeError('Failed to fetch')
    }
    const first = tracked(shared)
    first.recsdk('view', { item_id: 'sku-1' })
    await tick(1000)
    const kept = shared.queue().map((e) => e.event_id)
    assert.equal(kept.length, 2)
    shared.answer = () => 200
    shared.requests.length = 0
    tracked(shared, {}, { url: 'https://shop.example/p/2' })
    await tick(1000)
    assert.deepEqual(
      shared.sent.map((e) => e.event_id),
      [...kept, shared.sent[2].event_id],
    )
    assert.deepEqual(shared.queue(), [])
  })

  test('a long queue goes out in batches of 20 after the collector comes back', async () => {
    const shared = new Shared()
    shared.answer = () => 503
    const win = tracked(shared)
    for (let i = 0; i < 44; i++) win.recsdk('view', { item_id: `sku-${i}` })
    await tick(1000)
    shared.answer = () => 200
    for (let i = 0; i < 130; i++) await tick(1000)
    const ok = shared.requests.filter((r) => r.status === 200)
    assert.deepEqual(
      ok.map((r) => r.body.batch.length),
      [20, 20, 5],
    )
    assert.deepEqual(shared.queue(), [])
    const ids = new Set(shared.sent.map((e) => e.event_id))
    assert.equal(ids.size, 45)
  })

  test('the stored queue keeps the newest 200 events', async () => {
    const shared = new Shared()
    shared.answer = () => 503
    const win = tracked(shared)
    for (let i = 0; i < 250; i++) win.recsdk('view', { item_id: `sku-${i}` })
    const queue = shared.queue()
    assert.equal(queue.length, 200)
    assert.equal(queue.at(-1).item_id, 'sku-249')
  })

  test('pagehide and hidden pages hand the queue to sendBeacon; it stays queued', async () => {
    const shared = new Shared()
    const win = tracked(shared)
    for (let i = 0; i < 5; i++) win.recsdk('view', { item_id: `sku-${i}` })
    win.dispatch('pagehide')
    const beacons = shared.requests.filter((r) => r.kind === 'beacon')
    assert.equal(beacons.length, 1)
    assert.equal(beacons[0].url, `${ENDPOINT}/events`)
    assert.equal(beacons[0].body.key, 'pk_test')
    assert.equal(beacons[0].body.batch.length, 6)
    assert.equal(shared.queue().length, 6, 'kept until a fetch is answered')
    win.document.hidden = true
    win.dispatch('visibilitychange') // nothing new: no second beacon
    win.recsdk('view', { item_id: 'sku-9' })
    win.dispatch('visibilitychange')
    const later = shared.requests.filter((r) => r.kind === 'beacon')
    assert.deepEqual(
      later.map((r) => r.body.batch.length),
      [6, 1],
    )
    assert.equal(shared.queue().length, 7)
  })

  test('a failed batch is offered to the beacon again; one in flight is not', async () => {
    const shared = new Shared()
    shared.answer = () => 503
    const win = tracked(shared)
    await tick(1000) // the page event's batch failed
    win.dispatch('pagehide')
    assert.deepEqual(
      shared.requests.map((r) => [r.kind, r.body.batch.length]),
      [
        ['fetch', 1],
        ['beacon', 1],
      ],
    )
    let answer
    win.fetch = (u, init) => {
      shared.requests.push({ kind: 'fetch', body: JSON.parse(init.body) })
      return new Promise((resolve) => {
        answer = resolve
      })
    }
    await tick(2000) // the retry is in flight
    win.recsdk('view', { item_id: 'sku-1' })
    win.dispatch('pagehide')
    assert.deepEqual(
      shared.requests.slice(2).map((r) => [r.kind, r.body.batch.map((e) => e.type)]),
      [
        ['fetch', ['page']],
        ['beacon', ['view']],
      ],
    )
    answer({ status: 200 })
  })

  test('a batch whose fetch got no answer is not handed to the beacon: it may have arrived', async () => {
    // As when a link leaves the page: Chromium rejects the keepalive fetch's promise while
    // the request goes on, then the page is hidden. The retries send the batch again.
    const shared = new Shared()
    const win = tracked(shared)
    shared.answer = () => {
      throw new TypeError('Failed to fetch')
    }
    win.recsdk('click', { item_id: 'sku-1', rec_id: 'r-1' })
    await tick(1000) // the batch's fetch fails without an answer
    win.dispatch('pagehide')
    win.document.hidden = true
    win.dispatch('visibilitychange')
    assert.deepEqual(
      shared.requests.map((r) => r.kind),
      ['fetch'],
    )
    assert.equal(shared.queue().length, 2, 'still queued for the retries and the next page')
    win.recsdk('view', { item_id: 'sku-2' }) // a new event still goes with the beacon
    win.dispatch('visibilitychange')
    assert.deepEqual(
      shared.requests.map((r) => [r.kind, r.body.batch.map((e) => e.type)]),
      [
        ['fetch', ['page', 'click']],
        ['beacon', ['view']],
      ],
    )
  })

  test('tabs keep their own queues: no event lost or sent twice by two tabs', async () => {
    const shared = new Shared()
    let release
    const slow = new Promise((resolve) => {
      release = resolve
    })
    const a = tracked(shared)
    await tick(1000)
    const b = tracked(shared, {}, { url: 'https://shop.example/p/2' })
    await tick(1000)
    a.fetch = async (u, init) => {
      shared.requests.push({ kind: 'fetch', body: JSON.parse(init.body) })
      await slow
      return { status: 200 }
    }
    for (let i = 0; i < 3; i++) {
      a.recsdk('view', { item_id: `a-${i}` })
      b.recsdk('view', { item_id: `b-${i}` })
    }
    await tick(1000)
    release()
    await settle()
    await tick(1000)
    const ids = shared.sent.map((e) => e.event_id)
    assert.equal(ids.length, 8)
    assert.equal(new Set(ids).size, 8)
    assert.deepEqual(shared.queue(), [])
    const keys = [...shared.storage.keys()].filter((k) => k.startsWith('recsdk_q'))
    assert.equal(keys.length, 2, 'one queue a page')
  })

  test('a new page takes over the queues that closed pages left', async () => {
    const shared = new Shared()
    shared.answer = () => 503
    const old = tracked(shared)
    old.recsdk('view', { item_id: 'sku-1' })
    await tick(1000)
    const left = shared.queue()
    assert.equal(left.length, 2)
    shared.answer = () => 200
    shared.requests.length = 0
    tracked(shared, {}, { url: 'https://shop.example/p/2' })
    await tick(1000)
    assert.deepEqual(
      shared.sent.slice(0, 2).map((e) => e.event_id),
      left.map((e) => e.event_id),
    )
    assert.deepEqual(shared.queue(), [])
    const keys = [...shared.storage.keys()].filter((k) => k.startsWith('recsdk_q'))
    assert.equal(keys.length, 1, 'the old queue was taken over')
  })

  test('when localStorage fails, events are kept in memory and still sent', async () => {
    for (const failure of ['storageBroken', 'storageFull']) {
      const shared = new Shared()
      shared[failure] = true
      const win = tracked(shared)
      win.recsdk('view', { item_id: 'sku-1' })
      await tick(1000)
      assert.deepEqual(
        shared.sent.map((e) => e.type),
        ['page', 'view'],
        failure,
      )
      assert.equal(shared.sent[0].session_id, shared.sent[1].session_id)
      assert.equal(shared.sent[0].anonymous_id, shared.cookies.get('recsdk_a'))
    }
  })

  test('a batch whose body is over 60,000 characters goes without keepalive', async () => {
    const shared = new Shared()
    const win = tracked(shared)
    win.recsdk('view', { item_id: 'sku-1', properties: { text: 'x'.repeat(61000) } })
    await tick(1000)
    assert.equal(shared.requests[0].keepalive, false)
  })
})

describe('events', () => {
  test('purchase sends one event per order line', async () => {
    const shared = new Shared()
    const win = tracked(shared)
    win.recsdk('purchase', {
      order_id: 'o-1',
      currency: 'EUR',
      items: [
        { item_id: 'sku-1', price: 9.5, quantity: 2 },
        { item_id: 'sku-2', price: 3 },
      ],
    })
    await tick(1000)
    const lines = shared.sent.filter((e) => e.type === 'purchase')
    assert.deepEqual(
      lines.map(({ item_id, order_id, currency, price, quantity }) => ({
        item_id,
        order_id,
        currency,
        price,
        quantity,
      })),
      [
        { item_id: 'sku-1', order_id: 'o-1', currency: 'EUR', price: 9.5, quantity: 2 },
        { item_id: 'sku-2', order_id: 'o-1', currency: 'EUR', price: 3, quantity: undefined },
      ],
    )
    lines.forEach(checkSchema)
  })

  test('search, click, remove_from_cart and custom events', async () => {
    const shared = new Shared()
    const win = tracked(shared)
    win.recsdk('search', { query: 'red mug' })
    win.recsdk('click', { item_id: 'sku-1', rec_id: 'r-1' })
    win.recsdk('remove_from_cart', { item_id: 'sku-1' })
    win.recsdk('x-newsletter_signup', { properties: { list: 'weekly' } })
    await tick(1000)
    const [, search, click, remove, custom] = shared.sent
    assert.deepEqual(search.properties, { query: 'red mug' })
    assert.equal(click.rec_id, 'r-1')
    assert.equal(remove.type, 'remove_from_cart')
    assert.equal(custom.type, 'x-newsletter_signup')
    shared.sent.forEach(checkSchema)
  })

  test('automated browsers are flagged for the collector', async () => {
    const shared = new Shared()
    tracked(shared, {}, { navigator: { webdriver: true } })
    await tick(1000)
    assert.equal(shared.sent[0].context.webdriver, true)
  })
})

describe('identity and sessions', () => {
  test('the anonymous id lives in localStorage and a first-party cookie', async () => {
    const shared = new Shared()
    tracked(shared)
    await tick(1000)
    const anon = shared.sent[0].anonymous_id
    assert.equal(shared.storage.get('recsdk_a'), anon)
    assert.equal(shared.cookies.get('recsdk_a'), anon)
    tracked(shared, {}, { url: 'https://shop.example/p/2' })
    shared.storage.delete('recsdk_a') // cleared storage: the cookie brings it back
    tracked(shared, {}, { url: 'https://shop.example/p/3' })
    await tick(1000)
    assert.deepEqual(new Set(shared.sent.map((e) => e.anonymous_id)), new Set([anon]))
  })

  test('identify links the anonymous id to the user, on this page and the next', async () => {
    const shared = new Shared()
    const win = tracked(shared)
    win.recsdk('identify', 'user-7')
    win.recsdk('view', { item_id: 'sku-1' })
    await tick(1000)
    tracked(shared, {}, { url: 'https://shop.example/p/2' })
    await tick(1000)
    const [first, identify, view, next] = shared.sent
    assert.equal(first.user_id, undefined)
    assert.equal(identify.type, 'x-identify')
    for (const e of [identify, view, next]) {
      assert.equal(e.user_id, 'user-7')
      assert.equal(e.anonymous_id, first.anonymous_id)
    }
    win.recsdk('identify', null) // logging out
    win.recsdk('view', { item_id: 'sku-2' })
    await tick(1000)
    assert.equal(shared.sent.at(-1).user_id, undefined)
    assert.equal(shared.storage.has('recsdk_u'), false)
  })

  test('identify takes a number as its string', async () => {
    const shared = new Shared()
    const win = tracked(shared)
    win.recsdk('identify', 42) // a shop's numeric user key, as the collector takes it
    win.recsdk('view', { item_id: 'sku-1' })
    await tick(1000)
    assert.deepEqual(
      shared.sent.map((e) => [e.type, e.user_id]),
      [
        ['page', undefined],
        ['x-identify', '42'],
        ['view', '42'],
      ],
    )
    assert.equal(shared.storage.get('recsdk_u'), '42')
  })

  test('identify ignores a user id that is neither a string nor a number', async () => {
    const shared = new Shared()
    const win = tracked(shared)
    win.recsdk('identify', 'user-7')
    for (const wrong of [{ id: 7 }, true, ['u1'], '', { toString: () => 'x' }, Symbol('s')])
      win.recsdk('identify', wrong)
    win.recsdk('view', { item_id: 'sku-1' })
    await tick(1000)
    assert.deepEqual(
      shared.sent.map((e) => [e.type, e.user_id]),
      [
        ['page', undefined],
        ['x-identify', 'user-7'],
        ['view', 'user-7'],
      ],
    )
    assert.equal(shared.storage.get('recsdk_u'), 'user-7')
    const fresh = new Shared()
    const other = tracked(fresh)
    other.recsdk('identify', { id: 7 })
    other.recsdk('view', { item_id: 'sku-1' })
    await tick(1000)
    assert.deepEqual(
      fresh.sent.map((e) => [e.type, e.user_id]),
      [
        ['page', undefined],
        ['view', undefined],
      ],
    )
    assert.equal(fresh.storage.has('recsdk_u'), false)
    fresh.sent.forEach(checkSchema)
  })

  test('the cookie is set for 400 days, the most Chromium keeps', async () => {
    const win = tracked(new Shared())
    assert.match(
      win.cookieWrites[0],
      /^recsdk_a=[0-9a-f]{32};path=\/;samesite=lax;max-age=34560000$/, // 400 days
    )
  })

  test('a session ends after 30 minutes without events', async () => {
    const shared = new Shared()
    const win = tracked(shared)
    await tick(29 * 60000)
    win.recsdk('view', { item_id: 'sku-1' })
    await tick(30 * 60000 + 1)
    win.recsdk('view', { item_id: 'sku-2' })
    await tick(1000)
    const [a, b, c] = shared.sent.map((e) => e.session_id)
    assert.equal(a, b)
    assert.notEqual(b, c)
    assert.match(c, /^[0-9a-f]{32}$/)
  })
})

describe('consent and privacy', () => {
  test('with consent mode, nothing is sent or stored before consent', async () => {
    const shared = new Shared()
    const win = tracked(shared, { consent: true })
    win.recsdk('view', { item_id: 'sku-1' })
    win.recsdk('identify', 'user-7')
    await tick(5000)
    assert.equal(shared.requests.length, 0)
    assert.equal(shared.storage.size, 0)
    assert.equal(shared.cookies.size, 0)
    win.recsdk('consent', 'granted')
    await tick(1000)
    assert.deepEqual(
      shared.sent.map((e) => e.type),
      ['page', 'view', 'x-identify'],
    )
    assert.ok(shared.sent.every((e) => e.user_id === 'user-7'))
    assert.equal(shared.sent[0].timestamp, START / 1000, 'the time of the call')
  })

  test('widgets ask without the shopper ids before consent and after a denial', async () => {
    const shared = new Shared()
    const asked = []
    shared.answer = (request) => (request.kind === 'get' && asked.push(request.url), 200)
    /** The widgets' requests on `win` (a list, then similar items): path, user, visitor. */
    const widgets = (win) => {
      win.recsdk('recommend', { el: '#recs' })
      win.recsdk('recommend', { el: '#similar', item_id: 'sku-1' })
      return asked.splice(0).map((url) => {
        const { pathname, searchParams } = new URL(url)
        return [pathname, searchParams.get('user_id'), searchParams.get('anonymous_id')]
      })
    }
    const none = [
      ['/recsdk/recommendations', null, null],
      ['/recsdk/similar/sku-1', null, null],
    ]
    const win = tracked(shared, { consent: true })
    win.recsdk('identify', 'user-7')
    assert.deepEqual(widgets(win), none, 'pending')
    win.recsdk('consent', 'granted')
    const anon = shared.storage.get('recsdk_a')
    assert.deepEqual(widgets(win), [
      ['/recsdk/recommendations', 'user-7', anon],
      ['/recsdk/similar/sku-1', null, null],
    ])
    const next = tracked(shared, { consent: true }) // the ids stay stored, consent pending
    assert.deepEqual(widgets(next), none, 'pending on the next page')
    next.recsdk('identify', 'user-7')
    next.recsdk('consent', 'denied')
    assert.deepEqual(widgets(next), none, 'denied')
    await settle() // the fake's answers ({}, no rec_id) render nothing
  })

  test('denied drops pending events, and withdrawal wipes what was stored', async () => {
    const shared = new Shared()
    const win = tracked(shared, { consent: true })
    win.recsdk('view', { item_id: 'sku-1' })
    win.recsdk('consent', 'denied')
    win.recsdk('view', { item_id: 'sku-2' })
    await tick(5000)
    assert.equal(shared.requests.length, 0)

    const other = new Shared()
    other.answer = () => 503
    const granted = tracked(other, { consent: true })
    granted.recsdk('consent', 'granted')
    granted.recsdk('identify', 'user-7')
    assert.ok(other.storage.size > 0)
    granted.recsdk('consent', 'denied')
    assert.equal(other.storage.size, 0)
    assert.equal(other.cookies.size, 0)
    await tick(120000)
    assert.equal(other.requests.length, 0)
    granted.dispatch('pagehide')
    assert.equal(other.requests.length, 0)
  })

  test("consent takes only 'granted' and 'denied'; other values change nothing", async () => {
    const wrong = [undefined, true, 1, 'yes', 'Granted', ['granted'], { toString: () => 'denied' }]
    const shared = new Shared()
    const win = tracked(shared) // no consent option: tracking from the start
    await tick(1000)
    for (const v of wrong) win.recsdk('consent', v)
    win.recsdk('view', { item_id: 'sku-1' })
    await tick(1000)
    assert.deepEqual(
      shared.sent.map((e) => e.type),
      ['page', 'view'],
    )
    assert.ok(shared.storage.has('recsdk_a'))
    assert.ok(shared.cookies.has('recsdk_a'))

    const asking = new Shared()
    const pending = tracked(asking, { consent: true })
    pending.recsdk('view', { item_id: 'sku-1' })
    for (const v of wrong) pending.recsdk('consent', v)
    await tick(5000)
    assert.equal(asking.requests.length, 0, 'not granted')
    pending.recsdk('consent', 'granted')
    await tick(1000)
    assert.deepEqual(
      asking.sent.map((e) => e.type),
      ['page', 'view'],
      'not denied: the waiting events were kept',
    )
  })

  test('after withdrawal, the answer to a batch in flight writes nothing', async () => {
    const shared = new Shared()
    const win = tracked(shared, { consent: true })
    win.recsdk('consent', 'granted')
    let answer
    win.fetch = (u, init) => {
      shared.requests.push({ kind: 'fetch', body: JSON.parse(init.body) })
      return new Promise((resolve) => {
        answer = resolve
      })
    }
    await tick(1000) // the page event is in flight
    assert.equal(shared.requests.length, 1)
    win.recsdk('consent', 'denied')
    assert.equal(shared.storage.size, 0)
    answer({ status: 200 })
    await tick(60000)
    assert.deepEqual([...shared.storage.keys()], [])
    assert.equal(shared.cookies.size, 0)
    assert.equal(shared.requests.length, 1)
  })

  test('Do-Not-Track and Global Privacy Control are honoured with respectDNT', async () => {
    for (const signal of [{ doNotTrack: '1' }, { globalPrivacyControl: true }]) {
      const shared = new Shared()
      const win = tracked(shared, { respectDNT: true }, { navigator: signal })
      win.recsdk('consent', 'granted')
      win.recsdk('view', { item_id: 'sku-1' })
      await tick(5000)
      assert.equal(shared.requests.length, 0)
      assert.equal(shared.storage.size, 0)
      const ignored = new Shared()
      tracked(ignored, {}, { navigator: signal })
      await tick(1000)
      assert.equal(ignored.sent.length, 1, 'without respectDNT the signal is not read')
    }
  })
})

describe('pages', () => {
  test('SPA navigations send page events; a hash change does not', async () => {
    const shared = new Shared()
    const win = tracked(shared)
    win.history.pushState({}, '', '/cart')
    win.history.pushState({}, '', '/cart#top')
    win.location.href = 'https://shop.example/p/1'
    win.dispatch('popstate')
    await tick(1000)
    assert.deepEqual(
      shared.sent.map((e) => [e.type, e.context.page_url, e.context.referrer]),
      [
        ['page', 'https://shop.example/p/1', 'https://search.example/'],
        ['page', 'https://shop.example/cart', 'https://shop.example/p/1'],
        ['page', 'https://shop.example/p/1', 'https://shop.example/cart'],
      ],
    )
  })
})

describe('setup', () => {
  test("without an endpoint, events go to this site's /recsdk", async () => {
    const shared = new Shared()
    page(shared, {
      before(win) {
        stub(win)
        win.recsdk('init', {})
      },
    })
    await tick(1000)
    assert.equal(shared.requests[0].url, '/recsdk/events')
    assert.equal(shared.requests[0].body.key, undefined)
  })
})

describe('manners', () => {
  test('recsdk is the one global name the tracker adds', () => {
    const win = tracked(new Shared())
    const added = Object.keys(win).filter((k) => !win.globalsBefore.includes(k))
    assert.deepEqual(added, ['recsdk'])
  })

  test('loading the script twice keeps one tracker', async () => {
    const shared = new Shared()
    const win = tracked(shared)
    const api = win.recsdk
    const { runInContext } = await import('node:vm')
    runInContext((await import('./fake-browser.js')).CODE, win)
    assert.equal(win.recsdk, api)
    await tick(1000)
    assert.equal(shared.sent.length, 1)
  })

  test('names of Object.prototype are no commands: they go as events, like other wrong calls', async () => {
    const shared = new Shared()
    const win = tracked(shared)
    for (const name of ['toString', 'constructor', 'hasOwnProperty', 'valueOf', '__proto__'])
      win.recsdk(name, { item_id: 'sku-1' })
    await tick(1000)
    assert.deepEqual(
      shared.sent.map((e) => e.type),
      ['page', 'toString', 'constructor', 'hasOwnProperty', 'valueOf', '__proto__'],
    )
  })

  test('an event JSON cannot carry is dropped at the call; the others go on', async () => {
    const cycle = {}
    cycle.self = cycle
    for (const failure of [null, 'storageBroken']) {
      const shared = new Shared()
      if (failure) shared[failure] = true
      const win = tracked(shared, { consent: true })
      win.recsdk('view', { item_id: 'sku-1', properties: cycle }) // waits for consent
      win.recsdk('view', { item_id: 'sku-2' })
      win.recsdk('consent', 'granted')
      win.recsdk('view', { item_id: 'sku-3', price: 10n })
      win.recsdk('view', { item_id: 'sku-4' })
      await tick(1000)
      assert.deepEqual(
        shared.sent.map((e) => [e.type, e.item_id]),
        [
          ['page', undefined],
          ['view', 'sku-2'],
          ['view', 'sku-4'],
        ],
        `storage: ${failure ?? 'working'}`,
      )
      assert.deepEqual(shared.queue(), [])
    }
  })

  test('no call, however wrong, throws into the page', async () => {
    const shared = new Shared()
    const win = tracked(shared)
    const calls = [
      [],
      ['purchase'],
      ['purchase', { order_id: 'o', items: 3 }],
      ['recommend'],
      ['recommend', { el: '#none' }],
      ['view', null],
      ['init', null],
      ['identify', { toString: null }],
      ['consent'],
      ['toString'],
      ['__proto__', 1],
    ]
    for (const [i, call] of calls.entries()) assert.doesNotThrow(() => win.recsdk(...call), `call ${i}`)
    shared.storageBroken = true
    assert.doesNotThrow(() => win.recsdk('view', { item_id: 'x' }))
    win.fetch = () => {
      throw new Error('blocked by an extension')
    }
    await assert.doesNotReject(tick(120000))
    assert.doesNotThrow(() => win.dispatch('pagehide'))
    win.navigator.sendBeacon = () => {
      throw new Error('no')
    }
    assert.doesNotThrow(() => win.dispatch('pagehide'))
    assert.doesNotThrow(() => win.history.pushState({}, '', '/x'))
  })
})
