/** tokens.json of ingest-file: what it resolves, and the mistakes it refuses rather than records for good. */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileTokenResolver } from '../../src/cli/tokens-file.ts';
import { UsageError } from '../../src/cli/context.ts';

const GME = '0xa000000000000000000000000000000000000004';
const USDC = '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';

function tokensFile(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'ledger-tokens-')), 'tokens.json');
  writeFileSync(path, text);
  return path;
}

const refusal = (text: string): string => {
  const path = tokensFile(text);
  try {
    fileTokenResolver(path);
  } catch (e) {
    if (e instanceof UsageError) return e.message.replace(path, 'tokens.json');
    throw e;
  }
  throw new Error('expected a UsageError');
};

describe('tokens file', () => {
  it('resolves addresses in any case to their symbol, and a token it does not name to unknown, listing it once', async () => {
    const resolver = fileTokenResolver(tokensFile(JSON.stringify({ [GME.toUpperCase().replace('0X', '0x')]: 'tGME', [USDC]: 'a "quoted": {symbol}' })));
    const mentioned = (...addresses: string[]) => new Map(addresses.map((a) => [a, 100n])); // the blocks do not matter to a file
    expect(await resolver.resolve(mentioned(GME, USDC, '0x4200000000000000000000000000000000000006'))).toEqual(new Map([
      [GME, { symbol: 'tGME', reason: null }],
      [USDC, { symbol: 'a "quoted": {symbol}', reason: null }],
      ['0x4200000000000000000000000000000000000006', { symbol: null, reason: expect.stringMatching(/^not in tokens file /) }],
    ]));
    await resolver.resolve(mentioned('0x4200000000000000000000000000000000000006')); // asked again, after a racing ingester
    expect([...resolver.missing]).toEqual(['0x4200000000000000000000000000000000000006']);
  });

  it('refuses an address given twice, in two cases or as the same key, naming both spellings', () => {
    const upper = GME.replace('a', 'A');
    expect(refusal(`{"${GME}": "tGME", "${USDC}": "USDC", "${upper}": "tAAPL"}`))
      .toBe(`tokens file tokens.json: an address given twice: "${GME}" and "${upper}" (give each address once)`);
    expect(refusal(`{\n  "${GME}": "tGME",\n  "${GME}" : "tAAPL"\n}`)).toBe(`tokens file tokens.json: an address given twice: "${GME}" and "${GME}" (give each address once)`);
  });

  it('refuses an empty symbol, or one with whitespace around it, naming its address', () => {
    for (const symbol of ['', ' tGME', 'tGME\n']) {
      expect(refusal(JSON.stringify({ [GME]: symbol }))).toBe(
        `tokens file tokens.json: at ${GME}: expected a non-empty symbol without surrounding whitespace, got ${JSON.stringify(symbol)} (expected {"0x…address": "SYMBOL"})`,
      );
    }
  });

  it('refuses a key that is not an address rather than drop it: the token would be recorded as unknown, for good', () => {
    for (const key of ['WETH', `${GME}0`, GME.slice(2)]) {
      expect(refusal(JSON.stringify({ [USDC]: 'USDC', [key]: 'tGME' }))).toMatch(new RegExp(`^tokens file tokens\\.json: at ${key}: expected `));
    }
  });
});
