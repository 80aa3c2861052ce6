import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LEDGER_NAMESPACE, hedgeDecisionId, logEventId, logRemovedEventId, tokenEventId, uuidV5 } from '../../src/domain/ids.ts';

const DNS_NAMESPACE = '6ba7b810-9dad-11d1-80b4-00c04fd430c8';
const URL_NAMESPACE = '6ba7b811-9dad-11d1-80b4-00c04fd430c8';

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

  // Existing ledgers hold these ids: a change to the namespace or a name format would stop the
  // store from deduping against them, so the values are pinned, not recomputed.
  it('keeps the ids stored in existing ledgers, forever', () => {
    expect(LEDGER_NAMESPACE).toBe(uuidV5('hedge-ledger', URL_NAMESPACE));
    const tx = `0x${'ab'.repeat(32)}`;
    expect(logEventId(8453, tx, 7)).toBe('6d9cbea3-1305-556d-8ecf-3f7aa112fb32');
    expect(hedgeDecisionId('GME', 1)).toBe('26f96fec-13a7-55e9-af47-31b72495db9c');
    expect(logRemovedEventId(8453, tx, 7, `0x${'cd'.repeat(32)}`)).toBe('5002d8f3-4ee3-507a-8c1c-f4a41cdf92c4');
    expect(tokenEventId(8453, '0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913')).toBe('a18121a6-0ac9-5b73-aa10-8a812e27ae9a');
  });
});
