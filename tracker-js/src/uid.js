/**
 * A new id: a UUID version 7 as 32 hex digits (the collector accepts UUIDs without
 * dashes). Time-ordered ids keep the store's unique index append-mostly, and
 * crypto.getRandomValues works on http pages too, unlike crypto.randomUUID.
 */
export const uid = () =>
  // 48 bits of milliseconds: 11 hex digits from 2004 to 2527, so one leading 0
  '0' +
  Date.now().toString(16) +
  '7' +
  [...crypto.getRandomValues(new Uint8Array(19))]
    // nibble 3 of the random part is the RFC 9562 variant (8, 9, a or b)
    .map((b, i) => (i - 3 ? b & 15 : 8 | (b & 3)).toString(16))
    .join('')
