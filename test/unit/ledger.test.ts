/** The read models' view of the ledger (projections/ledger.ts): redeliveries and corrupt events. */
import { describe, expect, it } from 'vitest';
import { decodeEvent, encodeEvent, streams, type Envelope, type LedgerEvent } from '../../src/domain/events.ts';
import { asPosition, type RecordedEvent } from '../../src/eventstore/port.ts';
import { LedgerView } from '../../projections/ledger.ts';
import { hedgeDecisionId } from '../../src/domain/ids.ts';
import * as D from '../../src/domain/decimal.ts';
import { Scenario, config } from '../support/scenario.ts';
import { CHAIN_ID, ORDERBOOK } from '../support/orderbook-logs.ts';

const at = '2025-01-01T00:00:00.000Z';

/** `event` as the store would deliver it from `stream` at `revision`, after everything else. */
const storedAs = (event: LedgerEvent & { readonly id: string }, stream: string, revision: bigint): RecordedEvent => ({
  ...encodeEvent(event.id, event),
  stream,
  revision,
  position: asPosition('00000000000000009999'),
  metadata: null,
});

describe('LedgerView', () => {
  it('a redelivered order event changes nothing: a placed hedge does not go back to submitting', () => {
    const s = new Scenario();
    s.oS('1.5');
    const { commandId } = s.pending();
    const stream = `hedgeorder-${commandId}`;
    const submitting = s.history.event(stream, 'HedgeOrderSubmitting', '00000000-0000-5000-8000-00000000000a', { commandId, broker: 'paper', symbol: 'GME', side: 'BUY', quantity: '1', at });
    const placed = s.history.event(stream, 'HedgeOrderPlaced', '00000000-0000-5000-8000-00000000000b', { commandId, brokerOrderId: 'b1', at });
    const view = new LedgerView(config);
    for (const e of [...s.events, submitting, placed]) view.apply(e);
    const events = view.events;
    view.apply(submitting);
    expect(view.hedges.get(commandId)).toMatchObject({ status: 'placed', brokerOrderId: 'b1' });
    expect(view.events).toBe(events);
  });

  it('a stored decimal with more digits than our scale is a corrupt event, counted, not a crash of the fold', () => {
    const recorded: RecordedEvent = {
      stream: 'hedgeorder-x',
      type: 'HedgeOrderFilled',
      id: '00000000-0000-5000-8000-000000000001',
      revision: 0n,
      position: asPosition('00000000000000000001'),
      metadata: null,
      data: { commandId: '00000000-0000-5000-8000-000000000002', filledQuantity: '1', averagePrice: '20.0000000000000000001', at },
    };
    const decoded = decodeEvent(recorded);
    expect(decoded._tag === 'Left' && decoded.left.message).toMatch(/data\.averagePrice.*more than 18 fractional digits/);
    const view = new LedgerView(config);
    expect(view.applyStored(recorded)?.message).toMatch(/more than 18 fractional digits/);
    expect(view.rejectedByReason.get('corrupt_event')).toBe(1);
  });

  it.each([['1.5', 1.5], ['0', 0], ['-1', -1], ['1e400 (Infinity once parsed)', Number.POSITIVE_INFINITY]])(
    'a stored decision numbered %s is a corrupt event: the fold neither adopts it nor numbers its next decision after it',
    (_name, sequence) => {
      const s = new Scenario();
      s.oS('1.5');
      const { commandId } = s.pending();
      const phantom = '00000000-0000-5000-8000-0000000000ff';
      const recorded: RecordedEvent = {
        stream: 'hedgecmd-GME',
        type: 'HedgeRequested',
        id: phantom,
        revision: 1n,
        position: asPosition('00000000000000009999'),
        metadata: null,
        data: { commandId: phantom, sequence, symbol: 'GME', brokerSymbol: 'GME', side: 'SELL', quantity: '5', referencePrice: null, causationId: phantom },
      };
      const view = new LedgerView(config);
      for (const e of s.events) view.apply(e);
      expect(view.applyStored(recorded)?.path).toBe('data.sequence');
      expect(view.rejectedByReason.get('corrupt_event')).toBe(1);
      expect(view.position('GME').state).toMatchObject({ pending: { commandId }, decisions: 1 });
    },
  );

  it.each([
    ['a decision in the orderbook stream', (e: Envelope) => e.type === 'HedgeRequested', (s: Scenario) => `orderbook-1_${s.pending().commandId}`],
    ['an orderbook log in an order stream', (e: Envelope) => e.type === 'OrderbookLogRecorded', (s: Scenario) => `hedgeorder-${s.pending().commandId}`],
    ['token metadata in a command stream', (e: Envelope) => e.type === 'TokenMetadataRecorded', () => 'hedgecmd-GME'],
  ])('%s is a corrupt event naming its type, and no fold takes it for what its type says', (_name, pick, streamOf) => {
    const s = new Scenario();
    s.oS('1.5');
    const moved = storedAs(s.events.find(pick)!, streamOf(s), 7n);
    const decoded = decodeEvent(moved);
    expect(decoded._tag === 'Left' && decoded.left.message).toMatch(new RegExp(`^corrupt event ${moved.stream}@7 at type: a ${moved.type} belongs in a [a-z]+-… stream$`));
    const view = new LedgerView(config);
    for (const e of s.events) view.apply(e);
    const before = view.accumulator;
    expect(view.applyStored(moved)?.path).toBe('type');
    expect(view.rejectedByReason.get('corrupt_event')).toBe(1);
    expect(view.accumulator).toBe(before);
  });

  it.each([
    ['another orderbook\'s stream', (e: Envelope) => e.type === 'OrderbookLogRecorded', () => streams.orderbook(CHAIN_ID, `0x${'ab'.repeat(20)}`), 'data.address'],
    ['another chain\'s orderbook stream', (e: Envelope) => e.type === 'OrderbookLogRecorded', () => streams.orderbook(CHAIN_ID + 1, ORDERBOOK), 'data.chainId'],
    ['another chain\'s token stream', (e: Envelope) => e.type === 'TokenMetadataRecorded', () => streams.tokens(CHAIN_ID + 1), 'data.chainId'],
  ])('a chain fact stored in %s is a corrupt event, not a fact of the chain and orderbook its data names', (_name, pick, streamOf, path) => {
    const s = new Scenario();
    s.oS('0.4');
    const fact = s.events.find(pick)!;
    const view = new LedgerView(config);
    for (const e of s.events) if (e !== fact) view.apply(e);
    const before = view.position('GME');
    expect(view.applyStored(storedAs(fact, streamOf(), 7n))?.path).toBe(path);
    expect(view.rejectedByReason.get('corrupt_event')).toBe(1);
    expect(view.position('GME')).toEqual(before);
  });

  it('an outcome in one command\'s order stream that names another command is a corrupt event, not that command\'s outcome', () => {
    const s = new Scenario();
    s.oS('1.5');
    s.oB('2.5', 'tAAPL');
    const gme = s.pending('GME').commandId;
    const aapl = s.pending('AAPL').commandId;
    const filled = s.history.event(`hedgeorder-${aapl}`, 'HedgeOrderFilled', '00000000-0000-5000-8000-00000000000c', { commandId: aapl, filledQuantity: '2', averagePrice: '20', at });
    const misfiled = storedAs(filled, `hedgeorder-${gme}`, 0n);
    const view = new LedgerView(config);
    for (const e of s.events) view.apply(e);
    const before = view.accumulator;
    expect(view.applyStored(misfiled)?.message).toBe(`corrupt event hedgeorder-${gme}@0 at data.commandId: an event of command ${aapl} in the order stream of ${gme}`);
    expect(view.rejectedByReason.get('corrupt_event')).toBe(1);
    expect(view.accumulator).toBe(before);
    expect(view.hedges.get(aapl)?.status).toBe('requested');
    expect(view.position('AAPL').state.pending?.commandId).toBe(aapl);
  });

  it('a readable decision with a larger sequence than its place in the stream is corrupt: the fold keeps its pending command', () => {
    const s = new Scenario();
    s.oS('1.5');
    const { commandId } = s.pending();
    const five = hedgeDecisionId('GME', 5);
    const decision = { id: five, type: 'HedgeRequested', data: { commandId: five, sequence: 5, symbol: 'GME', brokerSymbol: 'GME', side: 'SELL', quantity: D.parse('5'), referencePrice: null, causationId: five } } as const;
    const view = new LedgerView(config);
    for (const e of s.events) view.apply(e);
    expect(view.applyStored(storedAs(decision, 'hedgecmd-GME', 1n))?.message).toBe('corrupt event hedgecmd-GME@1 at data.sequence: decision 5 stored at revision 1, not 4');
    expect(view.position('GME').state).toMatchObject({ pending: { commandId }, decisions: 1 });
    expect(view.hedges.has(five)).toBe(false);
  });

  it('a resume in one symbol\'s control stream that names another symbol is a corrupt event: the other symbol stays halted', () => {
    const s = new Scenario();
    s.oS('1.5');
    for (let i = 0; i < 3; i++) s.brokerFails();
    const view = new LedgerView(config);
    for (const e of s.events) view.apply(e);
    expect(view.position('GME').state.halted).toBe(true);
    const resume = { id: '00000000-0000-5000-8000-00000000000d', type: 'HedgingResumed', data: { symbol: 'GME', reason: 'operator', at } } as const;
    expect(view.applyStored(storedAs(resume, 'hedgectl-AAPL', 0n))?.message).toBe("corrupt event hedgectl-AAPL@0 at data.symbol: a resume of GME in another symbol's stream");
    expect(view.position('GME').state.halted).toBe(true);
  });
});
