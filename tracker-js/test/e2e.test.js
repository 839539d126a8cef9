// End-to-end: the built tracker in Debian's headless Chromium (driven by playwright-core),
// posting to the real Python collector on 127.0.0.1 over a SQLite file, from pages served
// by another origin (so CORS, the public key and the Origin allowlist are exercised).
//
// Chromium is automated here (navigator.webdriver is true, the user agent says
// HeadlessChrome), so the collector these tests use keeps bots (drop_bots=False); one test
// checks that a collector with drop_bots=True counts such events and stores none.
import assert from 'node:assert/strict'
import { after, before, describe, it, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { CHROMIUM, Collector, Pages, missing } from './e2e/harness.js'

const why = missing()
if (why && process.env.CI === 'true') {
  test('the browser tests can run (CI installs Chromium and the venv)', () => assert.fail(why))
}

const KEY = 'pk_test'

describe('tracker-js in Chromium against the real collector', { skip: why ?? false }, () => {
  const test = (name, f) => it(name, { timeout: 60000 }, f)
  let browser
  let pages
  let collector
  const errors = []

  before(async () => {
    const { chromium } = await import('playwright-core')
    pages = await new Pages().start()
    collector = await new Collector({ origins: [pages.origin] }).start()
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true })
  })

  after(async () => {
    await browser?.close()
    await collector?.close()
    await pages?.close()
  })

  /** A fresh browser profile (storage, cookies) with one tab; page errors are collected. */
  async function tab(options = {}) {
    const context = await browser.newContext(options)
    const page = await context.newPage()
    page.on('pageerror', (error) => errors.push(error))
    return { context, page }
  }

  const init = (extra = {}) => ({ endpoint: collector.url, key: KEY, ...extra })

  /** The stored events whose page URL has `path` in it. */
  const on = (state, path) => state.events.filter((e) => e.context?.page_url?.includes(path))

  /** The events in the page's stored queues (one a page: recsdk_q<page id>). */
  const queued = (page) =>
    page.evaluate(() =>
      Object.keys(localStorage)
        .filter((k) => k.startsWith('recsdk_q'))
        .flatMap((k) => JSON.parse(localStorage[k])),
    )

  test('page, view, cart, purchase, search, identify and click flows are stored', async () => {
    const url = pages.add('/t/flows', { init: init() })
    const { context, page } = await tab()
    await page.goto(url)
    await page.evaluate(() => {
      recsdk('view', { item_id: 'f-1', price: 9.5, currency: 'EUR' })
      recsdk('add_to_cart', { item_id: 'f-1', quantity: 2, price: 9.5 })
      recsdk('remove_from_cart', { item_id: 'f-2' })
      recsdk('purchase', {
        order_id: 'o-1',
        currency: 'EUR',
        items: [
          { item_id: 'f-1', quantity: 2, price: 9.5 },
          { item_id: 'f-3', quantity: 1, price: 4 },
        ],
      })
      recsdk('search', { query: 'red mug' })
      recsdk('identify', 'user-flows')
      recsdk('click', { item_id: 'f-4', rec_id: 'rec-1' })
    })
    const state = await collector.waitFor((s) => on(s, '/t/flows').length >= 9, '9 events')
    await sleep(1500) // nothing more, nothing twice
    const events = on(await collector.state(), '/t/flows')
    assert.deepEqual(
      events.map((e) => [e.type, e.item_id]),
      [
        ['page', null],
        ['view', 'f-1'],
        ['add_to_cart', 'f-1'],
        ['remove_from_cart', 'f-2'],
        ['purchase', 'f-1'],
        ['purchase', 'f-3'],
        ['search', null],
        ['x-identify', null],
        ['click', 'f-4'],
      ],
    )
    const [pageView, view, cart, , line1, line2, search, identify, click] = events
    const anon = await page.evaluate(() => localStorage.recsdk_a)
    assert.match(anon, /^[0-9a-f]{32}$/)
    assert.ok(events.every((e) => e.anonymous_id === anon))
    assert.equal(new Set(events.map((e) => e.session_id)).size, 1)
    assert.equal(pageView.context.page_url, url)
    assert.equal(pageView.context.webdriver, true, 'automation is flagged')
    assert.match(pageView.context.user_agent, /Chrome/)
    assert.equal(view.price, 9.5)
    assert.equal(view.currency, 'EUR')
    assert.equal(cart.quantity, 2)
    assert.deepEqual(
      [line1, line2].map((e) => [e.order_id, e.quantity, e.price]),
      [
        ['o-1', 2, 9.5],
        ['o-1', 1, 4],
      ],
    )
    assert.deepEqual(search.properties, { query: 'red mug' })
    assert.equal(identify.user_id, 'user-flows')
    assert.equal(click.user_id, 'user-flows')
    assert.equal(click.rec_id, 'rec-1')
    assert.ok(state.links.some(([a, u]) => a === anon && u === 'user-flows'), 'identity link')
    assert.equal(events.filter((e) => e.user_id).length, 2)
    const cookie = (await context.cookies()).find((c) => c.name === 'recsdk_a')
    assert.equal(cookie.value, anon)
    assert.deepEqual(await queued(page), [])
    await context.close()
  })

  test('calls made before the script loads are replayed in order', async () => {
    const url = pages.add('/t/replay', {
      init: init(),
      src: `${pages.origin}/recsdk.min.js?delay=800`,
      head: `<script>
        recsdk('view', {item_id: 'r-1'}); recsdk('add_to_cart', {item_id: 'r-1'});
        recsdk('view', {item_id: 'r-2'});
      </script>`,
    })
    const { context, page } = await tab()
    await page.goto(url, { waitUntil: 'domcontentloaded' })
    assert.deepEqual(
      await page.evaluate(() => [recsdk.q.length, recsdk.v]),
      [4, undefined],
      'the stub holds the calls until the script arrives',
    )
    const state = await collector.waitFor((s) => on(s, '/t/replay').length >= 4, '4 events')
    assert.deepEqual(
      on(state, '/t/replay').map((e) => [e.type, e.item_id]),
      [
        ['page', null],
        ['view', 'r-1'],
        ['add_to_cart', 'r-1'],
        ['view', 'r-2'],
      ],
    )
    await context.close()
  })

  test('data-recsdk-item views without code; SPA navigations send page events', async () => {
    const url = pages.add('/t/spa', {
      init: init(),
      body: '<main data-recsdk-item="d-1"><h1>Red mug</h1></main>',
    })
    const { context, page } = await tab()
    await page.goto(url)
    await collector.waitFor((s) => on(s, '/t/spa').length >= 2, 'the page and its view')
    await page.evaluate(() => {
      history.pushState({}, '', '/t/spa/second')
      document.querySelector('main').dataset.recsdkItem = 'd-2' // the router renders
    })
    await collector.waitFor((s) => on(s, '/t/spa').length >= 4, '4 events')
    await page.evaluate(() => history.pushState({}, '', '/t/spa/second#reviews')) // no new page
    await page.evaluate(() => history.go(-2)) // popstate: /t/spa again
    await collector.waitFor((s) => on(s, '/t/spa').length >= 5, '5 events')
    await page.evaluate(() => history.forward())
    await collector.waitFor((s) => on(s, '/t/spa').length >= 6, '6 events')
    await sleep(1200)
    assert.deepEqual(
      on(await collector.state(), '/t/spa').map((e) => [
        e.type,
        e.item_id,
        e.context.page_url.slice(pages.origin.length),
        e.context.referrer.slice(pages.origin.length),
      ]),
      [
        ['page', null, '/t/spa', ''],
        ['view', 'd-1', '/t/spa', ''],
        ['page', null, '/t/spa/second', '/t/spa'],
        ['view', 'd-2', '/t/spa/second', '/t/spa'],
        ['page', null, '/t/spa', '/t/spa/second'],
        ['page', null, '/t/spa/second', '/t/spa'],
      ],
    )
    await context.close()
  })

  test('a batch in flight when the page unloads still arrives (fetch keepalive)', async () => {
    const slow = await new Collector({ origins: [pages.origin], delay: 1.5 }).start()
    try {
      const url = pages.add('/t/inflight', { init: { endpoint: slow.url, key: KEY } })
      const { context, page } = await tab()
      // Only the keepalive fetch can deliver: no beacon, and the next page has no tracker.
      await page.addInitScript(() => {
        navigator.sendBeacon = () => false
      })
      await page.goto(url)
      const posted = page.waitForRequest((r) => r.url() === `${slow.url}/events`)
      await page.evaluate(() => {
        for (let i = 0; i < 9; i++) recsdk('view', { item_id: `i-${i}` }) // the 10th event
      })
      await posted
      await page.goto(pages.elsewhere) // leaves while the collector takes 1.5 s
      const state = await slow.waitFor((s) => s.events.length >= 10, 'the 10 events in flight')
      assert.equal(state.events.length, 10)
      assert.deepEqual(
        state.events.map((e) => e.item_id),
        [null, ...Array.from({ length: 9 }, (_, i) => `i-${i}`)],
      )
      await context.close()
    } finally {
      await slow.close()
    }
  })

  test('events tracked just before the page unloads go with sendBeacon', async () => {
    const url = pages.add('/t/beacon', { init: init() })
    const { context, page } = await tab()
    await page.goto(url)
    await page.evaluate(() => {
      recsdk('view', { item_id: 'b-1' })
      recsdk('add_to_cart', { item_id: 'b-1' })
    })
    await page.goto(pages.elsewhere) // before the 1 s batch timer
    const state = await collector.waitFor((s) => on(s, '/t/beacon').length >= 3, '3 events')
    assert.deepEqual(
      on(state, '/t/beacon').map((e) => e.type),
      ['page', 'view', 'add_to_cart'],
    )
    // A beacon's request is "no-cors" (a fetch's "cors"): only the beacon carried them.
    const posts = state.posts.filter((p) => p.page_url.includes('/t/beacon'))
    assert.deepEqual(
      posts.map((p) => [p.mode, p.events]),
      [['no-cors', 3]],
    )
    await context.close()
  })

  test('with the collector down, events wait; after it is back, a reload stores each once', async () => {
    const flaky = await new Collector({ origins: [pages.origin] }).start()
    try {
      const url = pages.add('/t/down', { init: { endpoint: flaky.url, key: KEY } })
      const { context, page } = await tab()
      await page.goto(url)
      await flaky.waitFor((s) => s.events.length === 1, 'the first page event')
      await flaky.stop()
      await page.evaluate(() => {
        for (const id of ['k-1', 'k-2', 'k-3']) recsdk('view', { item_id: id })
      })
      await sleep(2500) // a send fails, the retry too
      const waiting = await queued(page)
      assert.deepEqual(
        waiting.map((e) => e.item_id),
        ['k-1', 'k-2', 'k-3'],
      )
      await flaky.start() // same port, same SQLite file
      await page.reload()
      const state = await flaky.waitFor((s) => s.events.length >= 5, '5 events')
      await sleep(1500)
      const events = (await flaky.state()).events
      assert.deepEqual(
        events.map((e) => [e.type, e.item_id]).sort(),
        [
          ['page', null],
          ['page', null],
          ['view', 'k-1'],
          ['view', 'k-2'],
          ['view', 'k-3'],
        ],
      )
      const stored = new Set(events.map((e) => e.event_id))
      for (const e of waiting) assert.ok(stored.has(e.event_id), 'the same event ids')
      assert.deepEqual(await queued(page), [])
      assert.ok(state.stats.accepted >= 4)
      await context.close()
    } finally {
      await flaky.close()
    }
  })

  test('consent pending sends and stores nothing; granted sends; denied drops', async () => {
    const url = pages.add('/t/consent', { init: init({ consent: true }) })
    const { context, page } = await tab()
    await page.goto(url)
    await page.evaluate(() => recsdk('view', { item_id: 'c-1' }))
    await sleep(2500)
    assert.deepEqual(on(await collector.state(), '/t/consent'), [])
    assert.deepEqual(
      await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('recsdk'))),
      [],
    )
    assert.deepEqual(await context.cookies(), [])
    await page.evaluate(() => recsdk('consent', 'granted'))
    const state = await collector.waitFor((s) => on(s, '/t/consent').length >= 2, '2 events')
    assert.deepEqual(
      on(state, '/t/consent').map((e) => [e.type, e.item_id]),
      [
        ['page', null],
        ['view', 'c-1'],
      ],
    )
    await context.close()

    const deniedUrl = pages.add('/t/denied', { init: init({ consent: true }) })
    const denied = await tab()
    await denied.page.goto(deniedUrl)
    await denied.page.evaluate(() => {
      recsdk('view', { item_id: 'c-2' })
      recsdk('consent', 'denied')
      recsdk('view', { item_id: 'c-3' })
    })
    await denied.page.goto(pages.elsewhere)
    await sleep(2000)
    assert.deepEqual(on(await collector.state(), '/t/denied'), [])
    await denied.context.close()
  })

  test('Do-Not-Track and Global Privacy Control are respected with respectDNT', async () => {
    const url = pages.add('/t/dnt', { init: init({ respectDNT: true }) })
    const control = pages.add('/t/dnt-ignored', { init: init() })
    const { context, page } = await tab()
    await context.addInitScript(() => {
      Object.defineProperty(Navigator.prototype, 'doNotTrack', { get: () => '1' })
      Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true })
    })
    await page.goto(url)
    await page.evaluate(() => recsdk('view', { item_id: 'n-1' }))
    await page.goto(control)
    await collector.waitFor((s) => on(s, '/t/dnt-ignored').length >= 1, 'the control page')
    await sleep(500)
    const events = on(await collector.state(), '/t/dnt')
    assert.deepEqual(
      events.map((e) => e.context.page_url),
      [control],
    )
    await context.close()
  })

  test('the widget renders recommendations and its clicks are attributed', async () => {
    const template =
      '<template><a class="rec" href="{url}"><img src="{image_url}" alt="">' +
      '<span>{title}</span> <b>{price}</b> <i>{reason}</i></a></template>'
    const url = pages.add('/t/widget', {
      init: init(),
      body: `<div id="recs">${template}</div><div id="similar">${template}</div>`,
    })
    const { context, page } = await tab()
    await page.goto(url)
    await page.evaluate(() => {
      recsdk('identify', 'user-widget')
      recsdk('recommend', { el: '#recs', k: 3 })
      recsdk('recommend', { el: '#similar', item_id: 'sku-1', k: 2 })
    })
    await page.waitForSelector('#recs a.rec >> nth=2')
    await page.waitForSelector('#similar a.rec >> nth=1')
    const rendered = await page.evaluate(() =>
      [...document.querySelectorAll('#recs a.rec, #similar a.rec')].map((a) => [
        a.closest('[data-recsdk-rec]').dataset.recsdkRec,
        a.dataset.recsdkItem,
        a.getAttribute('href'),
        a.querySelector('span').textContent,
        a.querySelector('b').textContent,
      ]),
    )
    let state = await collector.state()
    // The two widgets fetch at once: their requests may arrive in either order.
    const recs = state.recs.findLast((r) => r.path === '/recsdk/recommendations')
    const similar = state.recs.findLast((r) => r.path === '/recsdk/similar/sku-1')
    const anon = await page.evaluate(() => localStorage.recsdk_a)
    assert.ok(recs && similar, 'both widgets asked the collector')
    assert.deepEqual(recs.query, { k: '3', user_id: 'user-widget', anonymous_id: anon, key: KEY })
    assert.deepEqual(similar.query, { k: '2', key: KEY })
    assert.deepEqual(rendered, [
      [recs.rec_id, 'sku-1', '/product/sku-1', 'Mug <1>', '10.5'],
      [recs.rec_id, 'sku-2', '/product/sku-2', 'Mug <2>', '11.5'],
      [recs.rec_id, 'sku-3', '/product/sku-3', 'Mug <3>', '12.5'],
      [similar.rec_id, 'sku-2', '/product/sku-2', 'Mug <2>', '11.5'],
      [similar.rec_id, 'sku-3', '/product/sku-3', 'Mug <3>', '12.5'],
    ])
    assert.equal(await page.locator('#recs template').count(), 1, 'the template stays')
    // A click on a recommendation leaves the page: the click must still arrive.
    await Promise.all([page.waitForURL('**/product/sku-2'), page.click('#recs a.rec >> nth=1')])
    state = await collector.waitFor(
      (s) => on(s, '/t/widget').some((e) => e.type === 'click'),
      'the click',
    )
    const clicks = on(state, '/t/widget').filter((e) => e.type === 'click')
    assert.equal(clicks.length, 1)
    assert.equal(clicks[0].item_id, 'sku-2')
    assert.equal(clicks[0].rec_id, recs.rec_id)
    assert.equal(clicks[0].user_id, 'user-widget')
    await context.close()
  })

  test('a widget sends the shopper ids only with consent, and renders without them', async () => {
    const template = '<template><a class="rec" href="{url}">{title}</a></template>'
    const url = pages.add('/t/widget-consent', {
      init: init({ consent: true }),
      body: `<div id="recs">${template}</div>`,
    })
    const { context, page } = await tab()
    /** Show the widget with k items; its request, once the container shows that list. */
    const widget = async (k) => {
      const before = (await collector.state()).recs.length
      await page.evaluate((k) => recsdk('recommend', { el: '#recs', k }), k)
      const state = await collector.waitFor((s) => s.recs.length > before, 'the widget')
      const asked = state.recs[before]
      assert.equal(asked.status, 200)
      await page.waitForFunction(
        ([id, k]) =>
          document.querySelector('#recs').dataset.recsdkRec === id &&
          document.querySelectorAll('#recs a.rec').length === k,
        [asked.rec_id, k],
      )
      return asked.query
    }
    await page.goto(url)
    await page.evaluate(() => recsdk('identify', 'user-consent'))
    // Pending: no id of the shopper leaves the page, and the list still shows (not personal).
    assert.deepEqual(await widget(2), { k: '2', key: KEY })
    await page.evaluate(() => recsdk('consent', 'granted'))
    const anon = await page.evaluate(() => localStorage.recsdk_a)
    assert.match(anon, /^[0-9a-f]{32}$/)
    assert.deepEqual(await widget(3), {
      k: '3',
      user_id: 'user-consent',
      anonymous_id: anon,
      key: KEY,
    })
    // The next page asks again: until it has an answer, the ids kept from before stay home.
    await page.goto(url)
    assert.equal(await page.evaluate(() => localStorage.recsdk_u), 'user-consent')
    assert.deepEqual(await widget(2), { k: '2', key: KEY })
    await page.evaluate(() => {
      recsdk('identify', 'user-consent')
      recsdk('consent', 'denied')
    })
    assert.deepEqual(await widget(3), { k: '3', key: KEY })
    await context.close()
  })

  test('a collector with recommendations_need_key gets the public key from the widget', async () => {
    const guarded = await new Collector({ origins: [pages.origin], needKey: true }).start()
    try {
      const template = '<template><a class="rec" href="{url}">{title}</a></template>'
      const url = pages.add('/t/widget-key', {
        init: { endpoint: guarded.url, key: KEY },
        body: `<div id="recs">${template}</div>`,
      })
      const { context, page } = await tab()
      await page.goto(url)
      await page.evaluate(() => recsdk('recommend', { el: '#recs', k: 2 }))
      await page.waitForSelector('#recs a.rec >> nth=1')
      const [asked] = (await guarded.state()).recs
      assert.equal(asked.status, 200)
      assert.equal(asked.query.key, KEY)
      assert.equal(await page.locator('#recs').getAttribute('data-recsdk-rec'), asked.rec_id)
      await context.close()
    } finally {
      await guarded.close()
    }
  })

  test('an error answer leaves the container and its fallback as they were', async () => {
    const fallback = '<a class="fb" data-recsdk-item="fb-1" href="#fb-1">Best seller</a>'
    const url = pages.add('/t/widget-error', {
      init: init(),
      body: `<div id="recs"><template><a href="{url}">{title}</a></template>${fallback}</div>`,
    })
    const { context, page } = await tab()
    await page.goto(url)
    await page.evaluate(() => recsdk('recommend', { el: '#recs', k: 'many' })) // a 400 answer
    const state = await collector.waitFor(
      (s) => s.recs.some((r) => r.query.k === 'many'),
      'the request',
    )
    assert.equal(state.recs.find((r) => r.query.k === 'many').status, 400)
    await sleep(300) // its answer reaches the page
    assert.equal(await page.locator('#recs').getAttribute('data-recsdk-rec'), null)
    assert.equal(await page.locator('#recs a.fb').count(), 1)
    await page.click('#recs a.fb')
    await sleep(1500)
    assert.deepEqual(
      on(await collector.state(), '/t/widget-error').map((e) => [e.type, e.item_id]),
      [
        ['page', null],
        ['view', 'fb-1'], // outside a recommendation list: a view, and no click
      ],
    )
    await context.close()
  })

  test('a recommendation click that leaves the page is sent once', async () => {
    // The collector answers after the page has gone: Chromium rejects the keepalive fetch's
    // promise while its request goes on; the beacon must not send the click again.
    const slow = await new Collector({ origins: [pages.origin], delay: 1 }).start()
    try {
      const template = '<template><a class="rec" href="{url}">{title}</a></template>'
      const url = pages.add('/t/click-once', {
        init: { endpoint: slow.url, key: KEY },
        body: `<div id="recs">${template}</div>`,
      })
      const { context, page } = await tab()
      await page.goto(url)
      await page.evaluate(() => recsdk('recommend', { el: '#recs', k: 2 }))
      await page.waitForSelector('#recs a.rec >> nth=1')
      await slow.waitFor((s) => s.events.length === 1, 'the page event')
      await Promise.all([page.waitForURL('**/product/sku-2'), page.click('#recs a.rec >> nth=1')])
      await slow.waitFor((s) => s.events.some((e) => e.type === 'click'), 'the click')
      await page.goto(pages.elsewhere)
      await sleep(1500)
      const state = await slow.state()
      const click = state.events.find((e) => e.type === 'click')
      assert.equal(click.item_id, 'sku-2')
      const carried = state.posts.filter((p) => p.ids.includes(click.event_id))
      assert.deepEqual(
        carried.map((p) => p.mode),
        ['cors'],
        'one fetch, no beacon',
      )
      await context.close()
    } finally {
      await slow.close()
    }
  })

  test('a page on an origin the config leaves out sees the 403 and drops the batch', async () => {
    const other = await new Collector({ origins: ['https://shop.example'] }).start()
    try {
      const url = pages.add('/t/wrong-origin', { init: { endpoint: other.url, key: KEY } })
      const { context, page } = await tab()
      await page.goto(url)
      const answered = page.waitForResponse((r) => r.url() === `${other.url}/events`)
      assert.equal((await answered).status(), 403)
      await page.evaluate(() => recsdk('view', { item_id: 'w-1' }))
      await other.waitFor((s) => s.posts.length >= 2, 'the second batch')
      await sleep(300)
      assert.deepEqual(await queued(page), [], 'dropped, not kept for a retry')
      await sleep(2500) // a retry would come after 1-2 s
      await page.goto(pages.elsewhere) // nothing left for the beacon
      await sleep(500)
      const state = await other.state()
      assert.deepEqual(
        state.posts.map((p) => [p.mode, p.types]),
        [
          ['cors', ['page']],
          ['cors', ['view']],
        ],
      )
      assert.deepEqual(state.events, [])
      await context.close()
    } finally {
      await other.close()
    }
  })

  test('wrong identify and consent calls do nothing: later events are stored', async () => {
    const url = pages.add('/t/wrong-calls', { init: init() })
    const { context, page } = await tab()
    await page.goto(url)
    await page.evaluate(() => {
      recsdk('identify', { id: 7 })
      recsdk('identify', true)
      recsdk('identify', ['u1'])
      recsdk('consent')
      recsdk('consent', true)
      recsdk('view', { item_id: 'wc-1' })
    })
    const state = await collector.waitFor((s) => on(s, '/t/wrong-calls').length >= 2, '2 events')
    const anon = await page.evaluate(() => localStorage.recsdk_a)
    assert.deepEqual(
      on(state, '/t/wrong-calls').map((e) => [e.type, e.user_id, e.anonymous_id]),
      [
        ['page', null, anon],
        ['view', null, anon],
      ],
    )
    assert.equal(await page.evaluate(() => localStorage.recsdk_u), undefined)
    assert.ok(!state.links.some(([a]) => a === anon), 'no identity link')
    assert.equal((await context.cookies()).find((c) => c.name === 'recsdk_a')?.value, anon)
    await context.close()
  })

  test('two tabs keep their own queues: nothing lost, nothing sent twice', async () => {
    const a = pages.add('/t/tabs/a', { init: init() })
    const b = pages.add('/t/tabs/b', { init: init() })
    const { context, page } = await tab()
    const sent = []
    context.on('request', (r) => {
      if (r.url() === `${collector.url}/events`) sent.push(...JSON.parse(r.postData()).batch)
    })
    const other = await context.newPage()
    await page.goto(a)
    await collector.waitFor((s) => on(s, '/t/tabs/a').length === 1, "a's page event")
    await other.goto(b)
    await collector.waitFor((s) => on(s, '/t/tabs/b').length === 1, "b's page event")
    await Promise.all(
      [page, other].map((p, n) =>
        p.evaluate((n) => {
          for (let i = 0; i < 6; i++) recsdk('view', { item_id: `t-${n}-${i}` })
        }, n),
      ),
    )
    const state = await collector.waitFor((s) => on(s, '/t/tabs/').length >= 14, '14 events')
    await sleep(1500)
    assert.equal(on(await collector.state(), '/t/tabs/').length, 14)
    const ids = sent.map((e) => e.event_id)
    assert.equal(ids.length, 14, 'each event was sent once, by one tab')
    assert.equal(new Set(ids).size, 14)
    assert.ok(state)
    await context.close()
  })

  test('recsdk is the only global name; the script as the collector serves it', async () => {
    const url = pages.add('/t/global', {
      init: init(),
      src: `${collector.url}/recsdk.js`,
      before: '<script>window.__before = Object.getOwnPropertyNames(window)</script>',
    })
    const { context, page } = await tab()
    await page.goto(url)
    await page.waitForFunction(() => window.recsdk.v)
    const added = await page.evaluate(() =>
      Object.getOwnPropertyNames(window).filter((k) => !window.__before.includes(k)),
    )
    assert.deepEqual(added.sort(), ['__before', 'recsdk'])
    await collector.waitFor((s) => on(s, '/t/global').length >= 1, 'the page event')
    await context.close()
  })

  test('a collector that drops bots counts automated Chromium and stores nothing', async () => {
    const strict = await new Collector({ origins: [pages.origin], dropBots: true }).start()
    try {
      const url = pages.add('/t/bots', { init: { endpoint: strict.url, key: KEY } })
      const { context, page } = await tab()
      await page.goto(url)
      await page.evaluate(() => recsdk('view', { item_id: 'bot-1' }))
      const state = await strict.waitFor((s) => s.stats.bots >= 2, 'two bot events')
      assert.deepEqual(state.events, [])
      assert.deepEqual(await queued(page), [], 'dropped for good, not retried')
      await context.close()
    } finally {
      await strict.close()
    }
  })

  test('no error reached the pages', () => {
    assert.deepEqual(errors, [])
  })
})
