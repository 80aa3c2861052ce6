import { describe, expect, it } from 'vitest';
import { table } from '../../src/cli/table.ts';

describe('table', () => {
  it('aligns columns to their widest cell, negative and wide numbers included', () => {
    expect(table(['symbol', 'net'], [['GME', '-1234567.25'], ['AAPL', '0.5']]).split('\n')).toEqual([
      'symbol  net',
      '------  -----------',
      'GME     -1234567.25',
      'AAPL    0.5',
    ]);
  });

  it('prints a ledger\'s worth of rows: `rejected` lists every foreign log of the orderbook', () => {
    const rows = Array.from({ length: 300_000 }, (_, i) => [30_000_000 + i, 0, null, 'not_ours', 'alice: owner 0x2222… is not ours']);
    const lines = table(['block', 'log', 'tx', 'reason', 'detail'], rows).split('\n');
    expect(lines).toHaveLength(300_002);
    expect(lines[2]).toBe('30000000  0    -   not_ours  alice: owner 0x2222… is not ours');
  });
});
