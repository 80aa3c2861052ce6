import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { hedgeDecisionId, logEventId, uuidV5 } from '../../src/domain/ids.ts';

const DNS_NAMESPACE = '6ba7b810-9dad-11d1-80b4-00c04fd430c8';

describe('deterministic ids', () => {
  it('computes RFC 9562 UUIDv5 (the published example)', () => {
    expect(uuidV5('www.example.com', DNS_NAMESPACE)).toBe('2ed6657d-e927-568b-95e1-2665a8aea6a2');
  });

  it('gives a log the same id whatever the case of its tx hash, and different logs different ids', () => {
    const tx = '0xAB'.padEnd(66, 'c');
    expect(logEventId(8453, tx, 3)).toBe(logEventId(8453, tx.toLowerCase(), 3));
    expect(new Set([logEventId(8453, tx, 3), logEventId(8453, tx, 4), logEventId(1, tx, 3)]).size).toBe(3);
  });

  it('is a version 5, RFC variant UUID for any name', () => {
    fc.assert(fc.property(fc.string(), (name) => /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(uuidV5(name))));
  });

  it('numbers the decisions of a symbol', () => {
    expect(hedgeDecisionId('GME', 1)).toBe(uuidV5('hedgecmd:GME:1'));
    expect(hedgeDecisionId('GME', 1)).not.toBe(hedgeDecisionId('GME', 2));
  });
});
