// Sends one message of each type with @segment/analytics-node, unmodified,
// to the Contrail server at argv[2] with the write key argv[3]. The Rust test
// (contrail/tests/it/process.rs) then reads the raw Arrow files and checks every
// field. Exits non-zero if the SDK reported any delivery error.
import { Analytics } from '@segment/analytics-node'

const [host, writeKey] = process.argv.slice(2)
const analytics = new Analytics({ writeKey, host, flushAt: 3, flushInterval: 100, maxRetries: 2 })
const errors = []
analytics.on('error', (err) => errors.push(String(err?.reason ?? err?.message ?? err)))

analytics.track({
  userId: 'sdk-user',
  event: 'Order Completed',
  messageId: 'sdk-track-1',
  timestamp: new Date('2026-11-23T10:00:00.000Z'),
  properties: { revenue: 42.5, currency: 'EUR', items: [{ sku: 'a-1', qty: 2 }] },
  context: { ip: '203.0.113.77', locale: 'de-DE' },
})
analytics.identify({
  userId: 'sdk-user',
  anonymousId: 'sdk-anon',
  messageId: 'sdk-identify-1',
  traits: { email: 'sdk@example.test', plan: 'pro' },
})
analytics.page({
  anonymousId: 'sdk-anon',
  name: 'Pricing',
  category: 'Docs',
  messageId: 'sdk-page-1',
  properties: { url: 'https://shop.test/pricing' },
})
analytics.screen({ userId: 'sdk-user', name: 'Home', messageId: 'sdk-screen-1' })
analytics.group({ userId: 'sdk-user', groupId: 'org-7', messageId: 'sdk-group-1', traits: { name: 'Acme' } })
analytics.alias({ userId: 'sdk-user', previousId: 'sdk-anon', messageId: 'sdk-alias-1' })

await analytics.closeAndFlush({ timeout: 15000 })
console.log(JSON.stringify({ errors }))
process.exit(errors.length ? 1 : 0)
