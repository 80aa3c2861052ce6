import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { bytesToHex, encodeEventTopics, toEventSelector, type Hex } from 'viem';
import * as D from '../../src/domain/decimal.ts';
import type { Envelope } from '../../src/domain/events.ts';
import { logEventId } from '../../src/domain/ids.ts';
import {
  AFTER_CLEAR_TOPIC,
  CLEAR_V2_TOPIC,
  TAKE_ORDER_V2_TOPIC,
  decodeOrderbookLog,
  orderbookAbi,
  type ClearConfig,
} from '../../src/domain/orderbook-abi.ts';
import { baseTicker, isUsdc } from '../../src/domain/symbols.ts';
import type { Json } from '../../src/eventstore/port.ts';
import type { Fill, Rejection, RejectionReason } from '../../projections/fill.ts';
import {
  CorruptExtractorState,
  deserializeExtractorState,
  extract,
  initialExtractorState,
  serializeExtractorState,
  type ExtractorState,
  type FillConfig,
} from '../../projections/fills.ts';
import {
  CHAIN_ID,
  History,
  ORDERBOOK,
  OTHER_OWNER,
  OUR_OWNER,
  TOKEN,
  afterClearLog,
  clearV2Log,
  io,
  lowercased,
  orderV3,
  takeOrderV2Log,
  txHash,
  type IoSpec,
  type OrderSpec,
  type RawLog,
  type TokenName,
} from '../support/orderbook-logs.ts';

const config: FillConfig = { chainId: CHAIN_ID, orderbook: ORDERBOOK, owners: new Set([OUR_OWNER]) };

interface Run {
  readonly state: ExtractorState;
  readonly fills: Fill[];
  readonly rejections: Rejection[];
  /** Outputs of each event, in order. */
  readonly steps: { fills: readonly Fill[]; rejections: readonly Rejection[] }[];
}

function run(events: readonly Envelope[], state: ExtractorState = initialExtractorState, cfg: FillConfig = config): Run {
  const out: Run = { state, fills: [], rejections: [], steps: [] };
  return events.reduce<Run>((acc, event) => {
    const step = extract(cfg, acc.state, event);
    return { state: step.state, fills: [...acc.fills, ...step.fills], rejections: [...acc.rejections, ...step.rejections], steps: [...acc.steps, step] };
  }, out);
}

const reasons = (r: Run): RejectionReason[] => r.rejections.map((x) => x.reason);

/** Our order selling `equity` for USDC; OTHER_OWNER's mirror order. */
const ourSeller = (equity: TokenName): OrderSpec => ({ owner: OUR_OWNER, validInputs: [io('USDC')], validOutputs: [io(equity)] });
const ourBuyer = (equity: TokenName): OrderSpec => ({ owner: OUR_OWNER, validInputs: [io(equity)], validOutputs: [io('USDC')] });
const theirs = (order: OrderSpec): OrderSpec => ({ ...order, owner: OTHER_OWNER });

/** Taker receives `shares` of equity from our seller order and pays `usdc`. */
const takeFromSeller = (equity: TokenName, shares: bigint, usdcUnits: bigint, order: OrderSpec = ourSeller(equity)): RawLog =>
  takeOrderV2Log(order, { input: shares, output: usdcUnits });

const E18 = 10n ** 18n;

describe('orderbook ABI', () => {
  it('hashes each event of the ABI to the topic0 of the spec', () => {
    const [clear, after, take] = orderbookAbi;
    expect([toEventSelector(clear), toEventSelector(after), toEventSelector(take)]).toEqual([CLEAR_V2_TOPIC, AFTER_CLEAR_TOPIC, TAKE_ORDER_V2_TOPIC]);
    expect(encodeEventTopics({ abi: orderbookAbi, eventName: 'ClearV2' })).toEqual([CLEAR_V2_TOPIC]);
    expect(encodeEventTopics({ abi: orderbookAbi, eventName: 'AfterClear' })).toEqual([AFTER_CLEAR_TOPIC]);
    expect(encodeEventTopics({ abi: orderbookAbi, eventName: 'TakeOrderV2' })).toEqual([TAKE_ORDER_V2_TOPIC]);
  });

  it('is exactly the IOrderBookV4 event ABI of the spec', () => {
    const spec: unknown = JSON.parse(readFileSync(new URL('../fixtures/IOrderBookV4.events.json', import.meta.url), 'utf8'));
    expect(JSON.parse(JSON.stringify(orderbookAbi))).toEqual(spec);
  });
});

describe('token symbols', () => {
  it.each([
    ['tGME', 'GME'],
    ['GME0x', 'GME'],
    ['GMEs1', 'GME'],
    ['tBRK.B', 'BRK.B'],
    ['tT', 'T'],
    ['SPLG0x', 'SPLG'],
  ])('%s is a tokenized equity of %s', (symbol, ticker) => expect(baseTicker(symbol)).toBe(ticker));

  it.each(['GME', 'tgme', 'gme0x', 'GME0X', 'GMES1', 't', '0x', 's1', 'tGME0x', 'USDC', 'WETH', 't1GME', ''])('%j is not a tokenized equity', (symbol) =>
    expect(baseTicker(symbol)).toBeNull(),
  );

  it('agrees with the spec\'s three forms read as patterns, for any symbol', () => {
    const ticker = /^[A-Z][A-Z0-9.]*$/;
    /** The spec's forms as patterns tried in turn, an independent reading of tGME, GME0x and GMEs1. */
    const reference = (symbol: string): string | null =>
      [/^t(.+)$/s, /^(.+)0x$/s, /^(.+)s1$/s].map((form) => form.exec(symbol)?.[1]).find((t) => t !== undefined && ticker.test(t)) ?? null;
    const tickerArb = fc.tuple(fc.constantFrom(...'ABGTXZ'), fc.stringMatching(/^[A-Z0-9.]{0,5}$/)).map(([first, rest]) => first + rest);
    const pieces = fc.constantFrom('t', 'T', 's', 's1', '0', '0x', 'x', 'X', 'USDC', 'GME', 'g', '.', '1', ' ', '\n', '');
    const symbol = fc.oneof(
      fc.tuple(tickerArb, fc.constantFrom('t', '', ''), fc.constantFrom('', '0x', 's1', '')).map(([t, pre, post]) => pre + t + post),
      fc.array(pieces, { maxLength: 5 }).map((ps) => ps.join('')),
      fc.string({ maxLength: 8 }),
    );
    fc.assert(fc.property(symbol, (s) => {
      expect(baseTicker(s)).toBe(reference(s));
    }), { numRuns: 2_000 });
    fc.assert(fc.property(tickerArb, (t) => [`t${t}`, `${t}0x`, `${t}s1`].every((s) => baseTicker(s) === t) && baseTicker(t) === null));
  });

  it('recognises USDC by its exact symbol only', () => {
    expect(isUsdc('USDC')).toBe(true);
    expect(['usdc', 'USDC.e', 'USDbC', 'tUSDC'].map(isUsdc)).toEqual([false, false, false, false]);
  });
});

describe('fill extraction: the worked examples of the spec', () => {
  it('given bob is ours, when his clear settles, then an onchain BUY of 9 AAPL at 100/9', () => {
    const h = new History();
    const bob: OrderSpec = { owner: OUR_OWNER, validInputs: [io('USDC'), io('AAPL0x')], validOutputs: [io('USDC')] };
    const alice = theirs({ owner: OTHER_OWNER, validInputs: [io('USDC')], validOutputs: [io('AAPL0x')] });
    const clear = h.log(clearV2Log(alice, bob, { bobInputIOIndex: 1n, bobOutputIOIndex: 0n }), { tx: 'tx1', logIndex: 3, block: 123n });
    const after = h.log(afterClearLog({ aliceOutput: 9n * E18, bobOutput: 100_000_000n, aliceInput: 100_000_000n, bobInput: 9n * E18 }), { tx: 'tx1', logIndex: 4, block: 123n });

    const result = run([...h.allTokens(), clear, after]);

    expect(result.rejections).toEqual([]);
    expect(result.fills).toEqual<Fill[]>([
      {
        logId: logEventId(CHAIN_ID, txHash('tx1'), 3),
        party: 'bob',
        chainId: CHAIN_ID,
        transactionHash: txHash('tx1'),
        blockNumber: 123n,
        logIndex: 3,
        owner: OUR_OWNER,
        symbol: 'AAPL',
        tokenSymbol: 'AAPL0x',
        side: 'BUY',
        shares: D.parse('9'),
        usdc: D.parse('100'),
        price: D.parse('11.111111111111111111'),
      },
    ]);
    expect(result.steps[result.steps.length - 2]).toMatchObject({ fills: [], rejections: [] }); // the ClearV2 waits
  });

  it('given a take on our tSPLG order, then an onchain SELL of 2 SPLG at 80.0775385', () => {
    const h = new History();
    const take = h.log(takeOrderV2Log(ourSeller('tSPLG'), { inputIOIndex: 0n, outputIOIndex: 0n, input: 2n * E18, output: 160_155_077n }), { tx: 'tx1', logIndex: 7 });

    const result = run([...h.allTokens(), take]);

    expect(result.rejections).toEqual([]);
    expect(result.fills).toEqual([
      expect.objectContaining({ logId: take.id, party: 'take', symbol: 'SPLG', tokenSymbol: 'tSPLG', side: 'SELL', shares: D.parse('2'), usdc: D.parse('160.155077'), price: D.parse('80.0775385') }),
    ]);
  });
});

describe('fill extraction: clears', () => {
  it('given alice and bob are both ours, then both fills count', () => {
    const h = new History();
    const clear = h.log(clearV2Log(ourSeller('tGME'), ourBuyer('tGME')), { tx: 'tx1', logIndex: 0 });
    const after = h.log(afterClearLog({ aliceOutput: 2n * E18, bobOutput: 50_000_000n, aliceInput: 50_000_000n, bobInput: 2n * E18 }), { tx: 'tx1', logIndex: 1 });

    const { fills, rejections } = run([...h.allTokens(), clear, after]);

    expect(rejections).toEqual([]);
    expect(fills.map((f) => [f.logId, f.party, f.side, D.format(f.shares), D.format(f.usdc)])).toEqual([
      [clear.id, 'alice', 'SELL', '2', '50'],
      [clear.id, 'bob', 'BUY', '2', '50'],
    ]);
  });

  it('given several clears in one transaction, then each pairs with the first unpaired AfterClear after it', () => {
    const h = new History();
    const first = h.log(clearV2Log(ourSeller('tGME'), theirs(ourBuyer('tGME'))), { tx: 'tx1', logIndex: 0 });
    const second = h.log(clearV2Log(ourSeller('tAAPL'), theirs(ourBuyer('tAAPL'))), { tx: 'tx1', logIndex: 1 });
    const firstAfter = h.log(afterClearLog({ aliceOutput: 1n * E18, bobOutput: 10_000_000n, aliceInput: 10_000_000n, bobInput: 1n * E18 }), { tx: 'tx1', logIndex: 2 });
    const secondAfter = h.log(afterClearLog({ aliceOutput: 3n * E18, bobOutput: 600_000_000n, aliceInput: 600_000_000n, bobInput: 3n * E18 }), { tx: 'tx1', logIndex: 3 });
    const third = h.log(clearV2Log(ourBuyer('GME0x'), theirs(ourSeller('GME0x'))), { tx: 'tx1', logIndex: 4 });
    const thirdAfter = h.log(afterClearLog({ aliceOutput: 20_000_000n, bobOutput: 5n * E18, aliceInput: 5n * E18, bobInput: 20_000_000n }), { tx: 'tx1', logIndex: 5 });

    const { fills, rejections } = run([...h.allTokens(), first, second, firstAfter, secondAfter, third, thirdAfter]);

    expect(rejections).toEqual([]);
    expect(fills.map((f) => [f.logId, f.tokenSymbol, f.side, D.format(f.shares), D.format(f.price)])).toEqual([
      [first.id, 'tGME', 'SELL', '1', '10'],
      [second.id, 'tAAPL', 'SELL', '3', '200'],
      [third.id, 'GME0x', 'BUY', '5', '4'],
    ]);
  });

  it('given a ClearV2 and the next log in another transaction, then the clear is rejected as unpaired and the next log still counts', () => {
    const h = new History();
    const clear = h.log(clearV2Log(ourSeller('tGME'), theirs(ourBuyer('tGME'))), { tx: 'tx1', logIndex: 0 });
    const elsewhere = h.hedgingResumed('GME'); // other streams interleave without ending the transaction
    const take = h.log(takeFromSeller('tGME', E18, 20_000_000n), { tx: 'tx2', logIndex: 0 });
    const lateAfter = h.log(afterClearLog({ aliceOutput: E18, bobOutput: 1n, aliceInput: 1n, bobInput: E18 }), { tx: 'tx2', logIndex: 1 });

    const result = run([...h.allTokens(), clear, elsewhere, take, lateAfter]);

    expect(result.steps.slice(-4, -2).flatMap((s) => s.rejections)).toEqual([]);
    expect(result.rejections.map((r) => [r.eventId, r.reason])).toEqual([
      [clear.id, 'unpaired_clear'],
      [lateAfter.id, 'unpaired_after_clear'],
    ]);
    expect(result.fills.map((f) => f.logId)).toEqual([take.id]);
    expect(result.state.openClears).toEqual([]);
  });

  it('given a ClearV2 left open and a clear of the next transaction in the same block (log indexes count on across it), then the open clear is rejected and the next gets its own AfterClear', () => {
    const h = new History();
    const open = h.log(clearV2Log(ourSeller('tGME'), theirs(ourBuyer('tGME'))), { tx: 'tx1', logIndex: 0, block: 100n });
    const next = h.log(clearV2Log(ourBuyer('tAAPL'), theirs(ourSeller('tAAPL'))), { tx: 'tx2', logIndex: 1, block: 100n });
    const nextAfter = h.log(afterClearLog({ aliceOutput: 40_000_000n, bobOutput: 2n * E18, aliceInput: 2n * E18, bobInput: 40_000_000n }), { tx: 'tx2', logIndex: 2, block: 100n });

    const { fills, rejections, state } = run([...h.allTokens(), open, next, nextAfter]);

    expect(rejections.map((r) => [r.eventId, r.reason])).toEqual([[open.id, 'unpaired_clear']]);
    expect(fills.map((f) => [f.logId, f.tokenSymbol, f.side, D.format(f.shares), D.format(f.price)])).toEqual([[next.id, 'tAAPL', 'BUY', '2', '20']]);
    expect(state.openClears).toEqual([]);
  });

  it('given an AfterClear that does not decode, then its own ClearV2 is rejected with it, and the next clear still gets its own amounts', () => {
    const h = new History();
    const gme = h.log(clearV2Log(ourSeller('tGME'), theirs(ourBuyer('tGME'))), { tx: 'tx1', logIndex: 0 });
    const good = afterClearLog({ aliceOutput: E18, bobOutput: 10_000_000n, aliceInput: 10_000_000n, bobInput: E18 });
    const broken = h.log({ ...good, data: good.data.slice(0, 100) as Hex }, { tx: 'tx1', logIndex: 1 });
    const aapl = h.log(clearV2Log(ourSeller('tAAPL'), theirs(ourBuyer('tAAPL'))), { tx: 'tx1', logIndex: 2 });
    const aaplAfter = h.log(afterClearLog({ aliceOutput: 3n * E18, bobOutput: 600_000_000n, aliceInput: 600_000_000n, bobInput: 3n * E18 }), { tx: 'tx1', logIndex: 3 });

    const { fills, rejections, state } = run([...h.allTokens(), gme, broken, aapl, aaplAfter]);

    expect(fills.map((f) => [f.logId, f.tokenSymbol, f.side, D.format(f.shares), D.format(f.price)])).toEqual([[aapl.id, 'tAAPL', 'SELL', '3', '200']]);
    expect(rejections.map((r) => [r.eventId, r.reason, r.detail])).toEqual([
      [gme.id, 'unpaired_clear', 'its AfterClear (log 1) could not be decoded'],
      [broken.id, 'malformed_log', expect.stringMatching(/^Data size/)],
    ]);
    expect(state.openClears).toEqual([]);
  });

  it('given a ClearV2 that does not decode before another clear, then its AfterClear is rejected, and the other clear gets its own amounts', () => {
    const h = new History();
    const valid = clearV2Log(ourSeller('tGME'), theirs(ourBuyer('tGME')));
    const broken = h.log({ ...valid, data: valid.data.slice(0, 300) as Hex }, { tx: 'tx1', logIndex: 0 });
    const aapl = h.log(clearV2Log(ourSeller('tAAPL'), theirs(ourBuyer('tAAPL'))), { tx: 'tx1', logIndex: 1 });
    const brokenAfter = h.log(afterClearLog({ aliceOutput: 7n * E18, bobOutput: 70_000_000n, aliceInput: 70_000_000n, bobInput: 7n * E18 }), { tx: 'tx1', logIndex: 2 });
    const aaplAfter = h.log(afterClearLog({ aliceOutput: 2n * E18, bobOutput: 400_000_000n, aliceInput: 400_000_000n, bobInput: 2n * E18 }), { tx: 'tx1', logIndex: 3 });
    const next = h.log(takeFromSeller('tGME', E18, 20_000_000n), { tx: 'tx2', logIndex: 0 });

    const { fills, rejections } = run([...h.allTokens(), broken, aapl, brokenAfter, aaplAfter, next]);

    expect(fills.map((f) => [f.logId, f.tokenSymbol, D.format(f.shares)])).toEqual([[aapl.id, 'tAAPL', '2'], [next.id, 'tGME', '1']]);
    expect(rejections.map((r) => [r.eventId, r.reason])).toEqual([
      [broken.id, 'malformed_log'],
      [brokenAfter.id, 'unpaired_after_clear'],
    ]);
  });

  it('given an AfterClear with no open ClearV2, then it is rejected as unpaired', () => {
    const h = new History();
    const after = h.log(afterClearLog({ aliceOutput: 1n, bobOutput: 1n, aliceInput: 1n, bobInput: 1n }), { tx: 'tx1', logIndex: 0 });
    expect(run([after]).rejections).toEqual<Rejection[]>([
      { eventId: after.id, transactionHash: txHash('tx1'), blockNumber: 100n, logIndex: 0, reason: 'unpaired_after_clear', detail: expect.stringContaining('no open ClearV2') as string },
    ]);
  });

  it('given a clear where neither alice nor bob is ours, then exactly one not_ours rejection for the ClearV2', () => {
    const h = new History();
    const clear = h.log(clearV2Log(theirs(ourSeller('tGME')), theirs(ourBuyer('tGME'))), { tx: 'tx1', logIndex: 0 });
    const after = h.log(afterClearLog({ aliceOutput: E18, bobOutput: 1n, aliceInput: 1n, bobInput: E18 }), { tx: 'tx1', logIndex: 1 });

    const result = run([...h.allTokens(), clear, after]);

    expect(result.rejections.map((r) => [r.eventId, r.reason])).toEqual([[clear.id, 'not_ours']]);
    expect(result.fills).toEqual([]);
  });

  it('given both parties ours and one has an IO index out of range, then the other still fills', () => {
    const h = new History();
    const clear = h.log(clearV2Log(ourSeller('tGME'), ourBuyer('tGME'), { aliceOutputIOIndex: 1n }), { tx: 'tx1', logIndex: 0 });
    const after = h.log(afterClearLog({ aliceOutput: E18, bobOutput: 10_000_000n, aliceInput: 10_000_000n, bobInput: E18 }), { tx: 'tx1', logIndex: 1 });

    const result = run([...h.allTokens(), clear, after]);

    expect(result.rejections).toEqual([expect.objectContaining({ eventId: clear.id, reason: 'bad_io_index', detail: expect.stringMatching(/^alice: /) as string })]);
    expect(result.fills.map((f) => [f.party, f.side])).toEqual([['bob', 'BUY']]);
  });
});

describe('fill extraction: rejections', () => {
  const rejectionOf = (events: readonly Envelope[], cfg: FillConfig = config): Rejection => {
    const result = run(events, initialExtractorState, cfg);
    expect(result.fills).toEqual([]);
    expect(result.rejections).toHaveLength(1);
    return result.rejections[0]!;
  };

  it('rejects a log of another contract or chain as not_ours', () => {
    const h = new History();
    const take = takeFromSeller('tGME', E18, 1_000_000n);
    expect(rejectionOf([...h.allTokens(), h.log(take, { tx: 'a', logIndex: 0, address: '0x9999999999999999999999999999999999999999' })]).reason).toBe('not_ours');
    expect(rejectionOf([...h.allTokens(), h.log(take, { tx: 'b', logIndex: 0, chainId: 1 })]).reason).toBe('not_ours');
  });

  it('rejects a take on an order of another owner as not_ours', () => {
    const h = new History();
    expect(rejectionOf([...h.allTokens(), h.log(takeFromSeller('tGME', E18, 1_000_000n, theirs(ourSeller('tGME'))), { tx: 'a', logIndex: 0 })])).toMatchObject({
      reason: 'not_ours',
      detail: `owner ${OTHER_OWNER} is not ours`,
    });
  });

  it('rejects an IO index out of range as bad_io_index', () => {
    const h = new History();
    const take = takeOrderV2Log(ourSeller('tGME'), { inputIOIndex: 0n, outputIOIndex: 2n ** 255n, input: E18, output: 1n });
    expect(rejectionOf([...h.allTokens(), h.log(take, { tx: 'a', logIndex: 0 })]).reason).toBe('bad_io_index');
  });

  it.each([
    ['the taker input (what we gave)', 0n, 1_000_000n],
    ['the taker output (what we received)', E18, 0n],
  ])('rejects a zero amount on %s as zero_amount', (_leg, input, output) => {
    const h = new History();
    expect(rejectionOf([...h.allTokens(), h.log(takeOrderV2Log(ourSeller('tGME'), { input, output }), { tx: 'a', logIndex: 0 })]).reason).toBe('zero_amount');
  });

  it('rejects a token with no symbol recorded before the log as unknown_token, even if recorded later', () => {
    const h = new History();
    const take = h.log(takeFromSeller('tGME', E18, 1_000_000n), { tx: 'a', logIndex: 0 });
    const result = run([h.token(TOKEN.USDC, 'USDC'), take, h.token(TOKEN.tGME, 'tGME')]);
    expect(reasons(result)).toEqual(['unknown_token']);
    expect(result.rejections[0]!.detail).toContain(TOKEN.tGME);
  });

  it('rejects a token recorded without symbol as unknown_token with the recorded reason', () => {
    const h = new History();
    const events = [h.token(TOKEN.USDC, 'USDC'), h.token(TOKEN.tGME, null, 'symbol() reverted'), h.log(takeFromSeller('tGME', E18, 1_000_000n), { tx: 'a', logIndex: 0 })];
    expect(rejectionOf(events)).toMatchObject({ reason: 'unknown_token', detail: expect.stringContaining('symbol() reverted') as string });
  });

  it('ignores token metadata of another chain', () => {
    const h = new History();
    const events = [h.token(TOKEN.USDC, 'USDC'), h.token(TOKEN.tGME, 'tGME', null, 1), h.log(takeFromSeller('tGME', E18, 1_000_000n), { tx: 'a', logIndex: 0 })];
    expect(rejectionOf(events).reason).toBe('unknown_token');
  });

  it.each<[string, OrderSpec]>([
    ['WETH/tAAPL', { owner: OUR_OWNER, validInputs: [io('WETH')], validOutputs: [io('tAAPL')] }],
    ['USDC/USDC', { owner: OUR_OWNER, validInputs: [io('USDC')], validOutputs: [io('USDC', 2n)] }],
    ['USDC/WETH', ourSeller('WETH')],
  ])('rejects a %s fill as not_hedgeable', (_pair, order) => {
    const h = new History();
    expect(rejectionOf([...h.allTokens(), h.log(takeOrderV2Log(order, { input: E18, output: E18 }), { tx: 'a', logIndex: 0 })]).reason).toBe('not_hedgeable');
  });

  it('rejects an equity of an unrecognised form as not_hedgeable', () => {
    const h = new History();
    const events = [h.token(TOKEN.USDC, 'USDC'), h.token(TOKEN.tGME, 'GME'), h.log(takeFromSeller('tGME', E18, 1_000_000n), { tx: 'a', logIndex: 0 })];
    expect(rejectionOf(events).reason).toBe('not_hedgeable');
  });

  it('rejects a price that rounds to zero at 18 digits, or an amount finer than 1e-18, as nonsensical_price', () => {
    const h = new History();
    const dust = takeFromSeller('tGME', 10n ** 38n, 1n); // 1e20 shares for 0.000001 USDC
    const fine: OrderSpec = { owner: OUR_OWNER, validInputs: [io('USDC')], validOutputs: [{ token: TOKEN.tGME, decimals: 20 }] };
    expect(rejectionOf([...h.allTokens(), h.log(dust, { tx: 'a', logIndex: 0 })]).reason).toBe('nonsensical_price');
    expect(rejectionOf([...h.allTokens(), h.log(takeOrderV2Log(fine, { input: 123n, output: 1n }), { tx: 'b', logIndex: 0 })]).reason).toBe('nonsensical_price');
  });

  it('rejects a log of another event as unknown_event, and data that does not decode as malformed_log with the decoder message', () => {
    const h = new History();
    const transfer: RawLog = { topics: [toEventSelector('Transfer(address,address,uint256)')], data: `0x${'00'.repeat(32)}` };
    const truncated: RawLog = { topics: [TAKE_ORDER_V2_TOPIC], data: takeFromSeller('tGME', E18, 1n).data.slice(0, 200) as Hex };
    const indexed: RawLog = { topics: [AFTER_CLEAR_TOPIC, `0x${'00'.repeat(32)}`], data: afterClearLog({ aliceOutput: 1n, bobOutput: 1n, aliceInput: 1n, bobInput: 1n }).data };

    expect(rejectionOf([h.log(transfer, { tx: 'a', logIndex: 0 })]).reason).toBe('unknown_event');
    expect(rejectionOf([h.log({ topics: [], data: '0x' }, { tx: 'b', logIndex: 0 })]).reason).toBe('unknown_event');
    expect(rejectionOf([h.log(truncated, { tx: 'c', logIndex: 0 })])).toMatchObject({ reason: 'malformed_log', detail: expect.stringMatching(/^Data size of \d+ bytes is too small/) as string });
    expect(rejectionOf([h.log(indexed, { tx: 'd', logIndex: 0 })])).toMatchObject({ reason: 'malformed_log', detail: 'expected 1 topic, got 2' });
  });

  it('given bad logs, the next good log of the same transaction still fills', () => {
    const h = new History();
    const events = [
      ...h.allTokens(),
      h.log({ topics: [CLEAR_V2_TOPIC], data: '0xdeadbeef' }, { tx: 'a', logIndex: 0 }),
      h.log({ topics: [`0x${'ab'.repeat(32)}`], data: '0x' }, { tx: 'a', logIndex: 1 }),
      h.log(takeOrderV2Log(ourSeller('tGME'), { input: 0n, output: 1n }), { tx: 'a', logIndex: 2 }),
      h.log(takeFromSeller('tGME', E18, 25_000_000n), { tx: 'a', logIndex: 3 }),
    ];
    const result = run(events);
    expect(reasons(result)).toEqual(['malformed_log', 'unknown_event', 'zero_amount']);
    expect(result.fills.map((f) => [f.symbol, f.side, D.format(f.price)])).toEqual([['GME', 'SELL', '25']]);
  });
});

describe('fill extraction: symbols and pass-through', () => {
  it('aggregates GME0x, GMEs1 and tGME under GME', () => {
    const h = new History();
    const events = [
      ...h.allTokens(),
      h.log(takeFromSeller('GME0x', 6n * 10n ** 17n, 12_000_000n), { tx: 'a', logIndex: 0 }),
      h.log(takeFromSeller('GMEs1', 3n * 10n ** 17n, 6_000_000n), { tx: 'b', logIndex: 0 }),
      h.log(takeFromSeller('tGME', 2n * 10n ** 17n, 4_000_000n), { tx: 'c', logIndex: 0 }),
    ];
    const { fills } = run(events);
    expect(fills.map((f) => [f.symbol, f.tokenSymbol, f.side, D.format(f.shares)])).toEqual([
      ['GME', 'GME0x', 'SELL', '0.6'],
      ['GME', 'GMEs1', 'SELL', '0.3'],
      ['GME', 'tGME', 'SELL', '0.2'],
    ]);
  });

  it('passes other events through without output and without touching the state', () => {
    const h = new History();
    const tokens = run(h.allTokens());
    for (const event of [h.hedgingResumed('GME'), h.token(TOKEN.tGME, 'tGME')]) {
      const step = extract(config, tokens.state, event);
      expect(step).toEqual({ state: tokens.state, fills: [], reversals: [], rejections: [], withdrawnRejections: [] });
      expect(step.state).toBe(tokens.state);
    }
  });
});

// ---- properties ----

const bytes = (length: number) => fc.uint8Array({ minLength: length, maxLength: length }).map((b) => bytesToHex(b));
const address = bytes(20);
const uint256 = fc.bigInt({ min: 0n, max: 2n ** 256n - 1n });
const ioSpec: fc.Arbitrary<IoSpec> = fc.record({ token: address, decimals: fc.integer({ min: 0, max: 18 }), vaultId: uint256 });
const orderSpec = (owner: fc.Arbitrary<Hex>): fc.Arbitrary<OrderSpec> =>
  fc.record({ owner, validInputs: fc.array(ioSpec, { minLength: 1, maxLength: 4 }), validOutputs: fc.array(ioSpec, { minLength: 1, maxLength: 4 }), nonce: bytes(32) });

/** An index into an array of `length`, as the event's uint256. */
const indexInto = (length: number) => fc.nat({ max: length - 1 }).map(BigInt);

describe('fill extraction: properties', () => {
  it('decodes random well-formed ClearV2, AfterClear and TakeOrderV2 logs back to the encoded fields', () => {
    const clearConfig: fc.Arbitrary<ClearConfig> = fc.record({
      aliceInputIOIndex: uint256,
      aliceOutputIOIndex: uint256,
      bobInputIOIndex: uint256,
      bobOutputIOIndex: uint256,
      aliceBountyVaultId: uint256,
      bobBountyVaultId: uint256,
    });
    const change = fc.record({ aliceOutput: uint256, bobOutput: uint256, aliceInput: uint256, bobInput: uint256 });
    fc.assert(
      fc.property(address, orderSpec(address), orderSpec(address), clearConfig, change, uint256, uint256, (sender, alice, bob, indexes, amounts, input, output) => {
        const clear = clearV2Log(alice, bob, indexes, sender);
        expect(lowercased(decodeOrderbookLog(clear.topics, clear.data))).toEqual({ event: 'ClearV2', args: lowercased({ sender, alice: orderV3(alice), bob: orderV3(bob), clearConfig: indexes }) });
        const after = afterClearLog(amounts, sender);
        expect(lowercased(decodeOrderbookLog(after.topics, after.data))).toEqual({ event: 'AfterClear', args: { sender, clearStateChange: amounts } });
        const take = takeOrderV2Log(alice, { inputIOIndex: indexes.aliceInputIOIndex, outputIOIndex: indexes.aliceOutputIOIndex, input, output }, sender);
        expect(lowercased(decodeOrderbookLog(take.topics, take.data))).toEqual({
          event: 'TakeOrderV2',
          args: lowercased({ sender, config: { order: orderV3(alice), inputIOIndex: indexes.aliceInputIOIndex, outputIOIndex: indexes.aliceOutputIOIndex, signedContext: [] }, input, output }),
        });
      }),
      { numRuns: 100 },
    );
  });

  it('extracts the exact amounts of random well-formed takes and clears (any owner of ours, IO layout, decimals, uint256 amounts)', () => {
    const owners = fc.array(address, { minLength: 1, maxLength: 3 });
    const amount = fc.oneof(fc.bigInt({ min: 1n, max: 10n ** 30n }), fc.bigInt({ min: 1n, max: 2n ** 256n - 1n }));
    /** An order of `owner` whose chosen IO pair is USDC against tGME (in either direction), decimals random. */
    const hedgeable = (owner: Hex) =>
      fc
        .record({ order: orderSpec(fc.constant(owner)), sells: fc.boolean(), usdcDecimals: fc.integer({ min: 0, max: 18 }), equityDecimals: fc.integer({ min: 0, max: 18 }) })
        .chain(({ order, sells, usdcDecimals, equityDecimals }) =>
          fc.tuple(indexInto(order.validInputs.length), indexInto(order.validOutputs.length)).map(([inputIOIndex, outputIOIndex]) => {
            const usdc: IoSpec = { token: TOKEN.USDC, decimals: usdcDecimals };
            const equity: IoSpec = { token: TOKEN.tGME, decimals: equityDecimals };
            const validInputs = order.validInputs.with(Number(inputIOIndex), sells ? usdc : equity);
            const validOutputs = order.validOutputs.with(Number(outputIOIndex), sells ? equity : usdc);
            return { order: { ...order, validInputs, validOutputs }, sells, usdcDecimals, equityDecimals, inputIOIndex, outputIOIndex };
          }),
        );
    fc.assert(
      fc.property(
        owners.chain((os) => fc.tuple(fc.constant(os), hedgeable(os[0]!), hedgeable(os[os.length - 1]!), amount, amount, amount, amount)),
        ([ours, take, bob, received, given, bobReceived, bobGiven]) => {
          const cfg: FillConfig = { ...config, owners: new Set(ours.map((o) => o.toLowerCase())) };
          const h = new History();
          const takeLog = h.log(takeOrderV2Log(take.order, { inputIOIndex: take.inputIOIndex, outputIOIndex: take.outputIOIndex, input: given, output: received }), { tx: 'a', logIndex: 0 });
          const stranger: OrderSpec = { owner: OTHER_OWNER, validInputs: [io('USDC')], validOutputs: [io('tGME')] };
          const clear = h.log(clearV2Log(stranger, bob.order, { bobInputIOIndex: bob.inputIOIndex, bobOutputIOIndex: bob.outputIOIndex }), { tx: 'b', logIndex: 0 });
          const after = h.log(afterClearLog({ aliceOutput: 1n, aliceInput: 1n, bobInput: bobReceived, bobOutput: bobGiven }), { tx: 'b', logIndex: 1 });
          const tokenEvents = [h.token(TOKEN.USDC, 'USDC'), h.token(TOKEN.tGME, 'tGME')];

          const result = run([...tokenEvents, takeLog, clear, after], initialExtractorState, cfg);

          const expected = (leg: typeof take, receivedUnits: bigint, givenUnits: bigint) => {
            const [equityUnits, usdcUnits] = leg.sells ? [givenUnits, receivedUnits] : [receivedUnits, givenUnits];
            const shares = D.fromUnits(equityUnits, leg.equityDecimals);
            const usdc = D.fromUnits(usdcUnits, leg.usdcDecimals);
            return { side: leg.sells ? 'SELL' : 'BUY', shares, usdc, price: D.div(usdc, shares) };
          };
          const priced = [expected(take, received, given), expected(bob, bobReceived, bobGiven)];
          // A price below 1e-18 is the only legitimate refusal of these logs.
          const nonsensical = priced.filter((p) => D.isZero(p.price)).length;
          expect(result.rejections.map((r) => r.reason)).toEqual(Array(nonsensical).fill('nonsensical_price'));
          expect(result.fills.map((f) => ({ side: f.side, shares: f.shares, usdc: f.usdc, price: f.price }))).toEqual(priced.filter((p) => !D.isZero(p.price)));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('scales every uint8 IO precision exactly: a fill equal to a bigint reference, or nonsensical_price exactly when a leg is finer than 1e-18 or the price rounds to 0', () => {
    const UINT256_MAX = 2n ** 256n - 1n;
    /** A uint8 precision and a non-zero uint256 amount of it, a whole number of 1e-18 as often as can be. */
    const leg = fc.integer({ min: 0, max: 255 }).chain((decimals) => {
      const step = 10n ** BigInt(Math.max(0, decimals - 18));
      const random = fc.bigInt({ min: 1n, max: UINT256_MAX });
      const most = UINT256_MAX / step; // whole multiples of step that are uint256s
      const whole = most >= 1n ? fc.oneof(fc.bigInt({ min: 1n, max: most < 10n ** 6n ? most : 10n ** 6n }), fc.bigInt({ min: 1n, max: most })).map((k) => k * step) : random;
      return fc.tuple(fc.constant(decimals), fc.oneof(random, whole));
    });
    /** amount / 10^decimals in units of 1e-18, or null when not whole. */
    const units = (decimals: number, amount: bigint): bigint | null => ((amount * E18) % 10n ** BigInt(decimals) === 0n ? (amount * E18) / 10n ** BigInt(decimals) : null);
    /** n / d rounded half to even, for positive n and d. */
    const halfEven = (n: bigint, d: bigint): bigint => {
      const [q, r] = [n / d, n % d];
      return 2n * r > d || (2n * r === d && q % 2n === 1n) ? q + 1n : q;
    };
    fc.assert(
      fc.property(fc.boolean(), leg, leg, (sells, [equityDecimals, equityAmount], [usdcDecimals, usdcAmount]) => {
        const equity: IoSpec = { token: TOKEN.tGME, decimals: equityDecimals };
        const usdc: IoSpec = { token: TOKEN.USDC, decimals: usdcDecimals };
        const order: OrderSpec = { owner: OUR_OWNER, validInputs: [sells ? usdc : equity], validOutputs: [sells ? equity : usdc] };
        // The taker's input is what our order gave.
        const [input, output] = sells ? [equityAmount, usdcAmount] : [usdcAmount, equityAmount];
        const h = new History();
        const result = run([h.token(TOKEN.USDC, 'USDC'), h.token(TOKEN.tGME, 'tGME'), h.log(takeOrderV2Log(order, { input, output }), { tx: 'a', logIndex: 0 })]);

        const shares = units(equityDecimals, equityAmount);
        const paid = units(usdcDecimals, usdcAmount);
        const price = shares !== null && paid !== null ? halfEven(paid * E18, shares) : 0n;
        if (price === 0n) {
          expect(result.fills).toEqual([]);
          expect(reasons(result)).toEqual(['nonsensical_price']);
        } else {
          expect(result.rejections).toEqual([]);
          expect(result.fills.map((f) => ({ side: f.side, shares: f.shares.units, usdc: f.usdc.units, price: f.price.units }))).toEqual([{ side: sells ? 'SELL' : 'BUY', shares, usdc: paid, price }]);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('gives a log of our order with one defect exactly one rejection, with the reason the spec lists for that defect, as a take or as either party of a clear', () => {
    type Defect = 'not_ours' | 'bad_io_index' | 'zero_amount' | 'not_hedgeable' | 'unknown_token' | 'nonsensical_price';
    const STRANGER = '0x9999999999999999999999999999999999999999';
    interface Case { order: OrderSpec; inputIOIndex: bigint; outputIOIndex: bigint; received: bigint; given: bigint }
    /** A hedgeable order of ours at random IO positions, 1e-6 to 1e6 shares for 1 to 1e6 USDC: a fill as it stands. */
    const fine = fc
      .record({ sells: fc.boolean(), before: fc.nat({ max: 3 }), after: fc.nat({ max: 3 }), shares: fc.bigInt({ min: 10n ** 12n, max: 10n ** 24n }), usdc: fc.bigInt({ min: 10n ** 6n, max: 10n ** 12n }) })
      .map(({ sells, before, after, shares, usdc }): Case => {
        const around = (x: IoSpec) => [...Array<IoSpec>(before).fill(io('WETH')), x, ...Array<IoSpec>(after).fill(io('WETH'))];
        const index = BigInt(before);
        return sells
          ? { order: { owner: OUR_OWNER, validInputs: around(io('USDC')), validOutputs: around(io('tGME')) }, inputIOIndex: index, outputIOIndex: index, received: usdc, given: shares }
          : { order: { owner: OUR_OWNER, validInputs: around(io('tGME')), validOutputs: around(io('USDC')) }, inputIOIndex: index, outputIOIndex: index, received: shares, given: usdc };
      });
    const legs = (c: Case) => ({ inputs: [...c.order.validInputs], outputs: [...c.order.validOutputs], i: Number(c.inputIOIndex), o: Number(c.outputIOIndex) });
    const defect = (d: Defect): fc.Arbitrary<(c: Case) => Case> => {
      switch (d) {
        case 'not_ours':
          return fc.constant((c) => ({ ...c, order: { ...c.order, owner: OTHER_OWNER } }));
        case 'bad_io_index':
          return fc.tuple(fc.boolean(), fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: 2n ** 256n - 10n }))).map(([input, past]) => (c) =>
            input ? { ...c, inputIOIndex: BigInt(c.order.validInputs.length) + past } : { ...c, outputIOIndex: BigInt(c.order.validOutputs.length) + past });
        case 'zero_amount':
          return fc.boolean().map((received) => (c) => (received ? { ...c, received: 0n } : { ...c, given: 0n }));
        case 'not_hedgeable':
          return fc.constantFrom<[TokenName, TokenName]>(['USDC', 'USDC'], ['USDC', 'WETH'], ['WETH', 'tGME'], ['tGME', 'GME0x'], ['USDC', 'tAAPL'], ['tAAPL', 'USDC']).map(([a, b]) => (c) => {
            const { inputs, outputs, i, o } = legs(c);
            return { ...c, order: { ...c.order, validInputs: inputs.with(i, io(a)), validOutputs: outputs.with(o, io(b)) } };
          });
        case 'unknown_token':
          return fc.boolean().map((input) => (c) => {
            const { inputs, outputs, i, o } = legs(c);
            const stranger = { token: STRANGER, decimals: 18 } as const;
            return { ...c, order: { ...c.order, validInputs: input ? inputs.with(i, stranger) : inputs, validOutputs: input ? outputs : outputs.with(o, stranger) } };
          });
        case 'nonsensical_price':
          // Either the equity amount is finer than 1e-18 at 19+ decimals, or a dust of USDC for 1e30 shares rounds to a price of 0.
          return fc.tuple(fc.boolean(), fc.integer({ min: 19, max: 40 })).map(([fineAmount, decimals]) => (c) => {
            const { inputs, outputs, i, o } = legs(c);
            const sells = inputs[i]!.token === TOKEN.USDC;
            if (!fineAmount) return sells ? { ...c, received: 1n, given: 10n ** 48n } : { ...c, received: 10n ** 48n, given: 1n };
            const equity = { token: TOKEN.tGME, decimals };
            const order = { ...c.order, validInputs: sells ? inputs : inputs.with(i, equity), validOutputs: sells ? outputs.with(o, equity) : outputs };
            const odd = 10n ** BigInt(decimals) + 1n; // 1 + 10^-decimals shares
            return sells ? { ...c, order, given: odd } : { ...c, order, received: odd };
          });
      }
    };
    const defects: Defect[] = ['not_ours', 'bad_io_index', 'zero_amount', 'not_hedgeable', 'unknown_token', 'nonsensical_price'];
    const kase = fc.constantFrom(...defects).chain((d) => fc.tuple(fc.constant(d), fine, defect(d), fc.constantFrom('take', 'alice', 'bob')));
    const stranger: OrderSpec = { owner: OTHER_OWNER, validInputs: [io('USDC')], validOutputs: [io('tGME')] };
    const logsOf = (h: History, c: Case, as: 'take' | 'alice' | 'bob', tx: string) => {
      if (as === 'take') return [h.log(takeOrderV2Log(c.order, { inputIOIndex: c.inputIOIndex, outputIOIndex: c.outputIOIndex, input: c.given, output: c.received }), { tx, logIndex: 0 })];
      const [alice, bob] = as === 'alice' ? [c.order, stranger] : [stranger, c.order];
      const indexes = as === 'alice' ? { aliceInputIOIndex: c.inputIOIndex, aliceOutputIOIndex: c.outputIOIndex } : { bobInputIOIndex: c.inputIOIndex, bobOutputIOIndex: c.outputIOIndex };
      const amounts = as === 'alice' ? { aliceInput: c.received, aliceOutput: c.given, bobInput: 1n, bobOutput: 1n } : { aliceInput: 1n, aliceOutput: 1n, bobInput: c.received, bobOutput: c.given };
      return [h.log(clearV2Log(alice, bob, indexes), { tx, logIndex: 0 }), h.log(afterClearLog(amounts), { tx, logIndex: 1 })];
    };
    fc.assert(
      fc.property(kase, ([d, base, spoil, as]) => {
        const h = new History();
        // tAAPL's recorded symbol is no tokenized-equity form.
        const tokens = [...(['USDC', 'tGME', 'GME0x', 'GMEs1', 'WETH'] as const).map((name) => h.token(TOKEN[name], name)), h.token(TOKEN.tAAPL, 'AAPL')];
        const logs = logsOf(h, spoil(base), as, 'a');
        const result = run([...tokens, ...logs]);
        expect(result.fills).toEqual([]);
        expect(result.rejections.map((r) => [r.reason, r.eventId])).toEqual([[d, logs[0]!.id]]);
        // Without the defect the same log fills: the defect alone is why it does not.
        expect(run([...tokens, ...logsOf(h, base, as, 'b')]).fills).toHaveLength(1);
      }),
      { numRuns: 300 },
    );
  });

  /** Random topics and data, and valid logs truncated or with a byte overwritten, so decoding gets deep. */
  const garbageLog: fc.Arbitrary<RawLog> = (() => {
    const valid = fc.constantFrom(
      clearV2Log(ourSeller('tGME'), ourBuyer('tGME')),
      afterClearLog({ aliceOutput: 1n, bobOutput: 2n, aliceInput: 3n, bobInput: 4n }),
      takeFromSeller('tGME', E18, 1n),
    );
    const truncated = fc.tuple(valid, fc.nat()).map(([log, cut]): RawLog => ({ ...log, data: log.data.slice(0, 2 + 2 * (cut % ((log.data.length - 2) / 2))) as Hex }));
    const overwritten = fc.tuple(valid, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([log, at, byte]): RawLog => {
      const i = 2 + 2 * (at % ((log.data.length - 2) / 2));
      return { ...log, data: `${log.data.slice(0, i)}${byte.toString(16).padStart(2, '0')}${log.data.slice(i + 2)}` as Hex };
    });
    const topic0 = fc.oneof(fc.constantFrom<Hex>(CLEAR_V2_TOPIC, AFTER_CLEAR_TOPIC, TAKE_ORDER_V2_TOPIC), bytes(32));
    const random = fc.record({ topics: fc.array(topic0, { maxLength: 3 }), data: fc.uint8Array({ maxLength: 700 }).map((b) => bytesToHex(b)) });
    return fc.oneof(truncated, overwritten, random);
  })();

  it('never throws on garbage and yields exactly one rejection per log, a ClearV2 when its transaction ends', () => {
    fc.assert(
      fc.property(fc.array(garbageLog, { minLength: 1, maxLength: 12 }), (raws) => {
        const h = new History();
        const noOwners: FillConfig = { ...config, owners: new Set() };
        const logs = [...raws, { topics: [], data: '0x' } satisfies RawLog].map((raw, i) => h.log(raw, { tx: `tx${i}`, logIndex: 0 }));

        const result = run([...h.allTokens(), ...logs], initialExtractorState, noOwners);

        expect(result.fills).toEqual([]);
        expect(result.rejections.map((r) => r.eventId).sort()).toEqual(logs.map((l) => l.id).sort());
        const logSteps = result.steps.slice(-logs.length);
        logSteps.forEach((step, i) => {
          const allowed = i === 0 ? [logs[0]!.id] : [logs[i - 1]!.id, logs[i]!.id];
          for (const r of step.rejections) expect(allowed).toContain(r.eventId);
        });
      }),
      { numRuns: 300 },
    );
  });

  /** A mixed history: token records (some unreadable), transactions of takes, clears, AfterClears and garbage, other events. */
  const history: fc.Arbitrary<(h: History) => Envelope[]> = (() => {
    const tokenName = fc.constantFrom<TokenName>('USDC', 'tGME', 'GME0x', 'tAAPL', 'WETH');
    const order = fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(ourSeller('tGME'), ourBuyer('GME0x'), ourSeller('tAAPL'), theirs(ourBuyer('tGME'))) },
      fc.record({
        owner: fc.constantFrom<Hex>(OUR_OWNER, OTHER_OWNER),
        validInputs: fc.array(tokenName.map((n) => io(n)), { minLength: 1, maxLength: 2 }),
        validOutputs: fc.array(tokenName.map((n) => io(n)), { minLength: 1, maxLength: 2 }),
      }),
    );
    const index = fc.oneof({ weight: 4, arbitrary: fc.constant(0n) }, fc.integer({ min: 0, max: 2 }).map(BigInt));
    const amount = fc.oneof({ weight: 4, arbitrary: fc.bigInt({ min: 1n, max: 10n ** 20n }) }, fc.constant(0n));
    const log: fc.Arbitrary<RawLog> = fc.oneof(
      fc.tuple(order, index, index, amount, amount).map(([o, i, j, input, output]) => takeOrderV2Log(o, { inputIOIndex: i, outputIOIndex: j, input, output })),
      fc.tuple(order, order, index, index).map(([a, b, i, j]) => clearV2Log(a, b, { aliceInputIOIndex: i, bobOutputIOIndex: j })),
      fc.tuple(amount, amount, amount, amount).map(([aliceOutput, bobOutput, aliceInput, bobInput]) => afterClearLog({ aliceOutput, bobOutput, aliceInput, bobInput })),
      { weight: 1, arbitrary: garbageLog },
    );
    type Step = (h: History, tx: string) => Envelope[];
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.tuple(tokenName, fc.option(fc.constantFrom('USDC', 'tGME', 'GME0x', 'tAAPL', 'WETH', 'GME'), { nil: null })).map(
        ([name, symbol]): Step =>
          (h) => [h.token(TOKEN[name], symbol, symbol === null ? 'symbol() reverted' : null)],
      ),
      { weight: 4, arbitrary: fc.array(log, { minLength: 1, maxLength: 5 }).map((raws): Step => (h, tx) => raws.map((raw, logIndex) => h.log(raw, { tx, logIndex }))) },
      fc.constant<Step>((h) => [h.hedgingResumed('GME')]),
    );
    return fc
      .tuple(fc.boolean(), fc.array(step, { maxLength: 12 }))
      .map(([tokensFirst, steps]) => (h: History) => [...(tokensFirst ? h.allTokens() : []), ...steps.flatMap((s, i) => s(h, `tx${i}`))]);
  })();

  it('round-trips the state through JSON, and extraction continued from a restored state equals extraction without the round trip', () => {
    fc.assert(
      fc.property(history, fc.nat(), (build, cut) => {
        const events = build(new History());
        const at = cut % (events.length + 1);
        const straight = run(events);
        const head = run(events.slice(0, at));

        const json: Json = serializeExtractorState(head.state);
        const restored = deserializeExtractorState(JSON.parse(JSON.stringify(json)));
        expect(restored).toEqual(head.state);
        const tail = run(events.slice(at), restored);

        expect([...head.fills, ...tail.fills]).toEqual(straight.fills);
        expect([...head.rejections, ...tail.rejections]).toEqual(straight.rejections);
        expect(serializeExtractorState(tail.state)).toEqual(serializeExtractorState(straight.state));
      }),
      { numRuns: 200 },
    );
  });

  it('restores an unreadable clear\'s placeholder, and refuses a readable clear carrying another `undecodable` (the fold would read it as unreadable)', () => {
    const log = { logId: 'x', chainId: CHAIN_ID, transactionHash: txHash('tx1'), blockNumber: '100', logIndex: 0 };
    const legs = { owner: OUR_OWNER, received: { token: TOKEN.tGME, decimals: 18 }, given: { token: TOKEN.USDC, decimals: 6 } };
    const placeholder = { tokens: {}, openClears: [{ log, undecodable: true }], removedClears: [{ log, undecodable: true }] };
    expect(serializeExtractorState(deserializeExtractorState(placeholder))).toEqual(placeholder);
    for (const undecodable of [false, 'yes', null]) {
      expect(() => deserializeExtractorState({ tokens: {}, openClears: [{ log, alice: legs, bob: { reason: 'not_ours', detail: 'theirs' }, undecodable }], removedClears: [] })).toThrow(CorruptExtractorState);
    }
  });

  it('refuses an open clear no fold derives: a log index, chain id or IO precision that is no whole number in its range', () => {
    const log = { logId: 'x', chainId: CHAIN_ID, transactionHash: txHash('tx1'), blockNumber: '100', logIndex: 0 };
    const legs = { owner: OUR_OWNER, received: { token: TOKEN.tGME, decimals: 18 }, given: { token: TOKEN.USDC, decimals: 6 } };
    const state = (clear: object) => ({ tokens: {}, openClears: [clear], removedClears: [] });
    const readable = { log, alice: legs, bob: { reason: 'not_ours', detail: 'theirs' } };
    expect(() => deserializeExtractorState(state(readable))).not.toThrow();
    const spoilt = [
      { ...readable, log: { ...log, logIndex: 1.5 } },
      { ...readable, log: { ...log, logIndex: -1 } },
      { log: { ...log, chainId: 0 }, undecodable: true },
      // Settled from the snapshot, 256 decimals would reject the clear's fill as nonsensical_price.
      { ...readable, alice: { ...legs, received: { ...legs.received, decimals: 256 } } },
      { ...readable, alice: { ...legs, given: { ...legs.given, decimals: 6.5 } } },
    ];
    for (const clear of spoilt) expect(() => deserializeExtractorState(state(clear)), JSON.stringify(clear)).toThrow(CorruptExtractorState);
  });

  it('refuses a corrupt snapshot naming the failing path', () => {
    const corrupt = { tokens: {}, openClears: [{ log: { logId: 'x', chainId: 1, transactionHash: '0x', blockNumber: 'ten', logIndex: 0 } }], removedClears: [] };
    expect(() => deserializeExtractorState(corrupt)).toThrow(CorruptExtractorState);
    expect(() => deserializeExtractorState(corrupt)).toThrow(/openClears\.0\.log\.blockNumber/);
  });
});
