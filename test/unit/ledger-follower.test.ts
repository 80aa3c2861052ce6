import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { encodeEvent, type Envelope } from '../../src/domain/events.ts';
import { StoreUnavailable } from '../../src/eventstore/errors.ts';
import type { EventStore, From, RecordedEvent, Subscription } from '../../src/eventstore/port.ts';
import { openStore } from '../../src/eventstore/url.ts';
import { FollowerFailed, LedgerFollower } from '../../src/services/ledger-follower.ts';
import { History, OTHER_OWNER, OUR_OWNER, clearV2Log, io, takeOrderV2Log } from '../support/orderbook-logs.ts';
import { config } from '../support/scenario.ts';
import { capturedLog } from '../support/test-log.ts';

const E18 = 10n ** 18n;
const log = pino({ level: 'silent' });

const recorded = (e: Envelope): RecordedEvent => {
  const { id, type, data } = encodeEvent(e.id, e);
  return { stream: e.stream, type, id, revision: e.revision, position: e.position, data, metadata: {} };
};

/** What one subscription does after delivering `after` events: throw, end by itself, or report that it will resubscribe by itself (as on EventStoreDB) and wait. */
type Fault = { readonly after: number; readonly then: Error | 'end' | { readonly resubscribe: StoreUnavailable } };

type ScriptedStore = Pick<EventStore, 'subscribe' | 'headPosition'> & {
  subscribedFrom: From[];
  /** Fails the subscription that is waiting for new events, as an outage would. */
  fail(error: Error): void;
};

/** A store whose subscriptions replay `events` (after `from`), then follow the scripted faults, then wait until closed or failed. */
function scriptedStore(events: readonly RecordedEvent[], faults: Fault[] = []): ScriptedStore {
  const subscribedFrom: From[] = [];
  let fail = (_: Error): void => undefined;
  return {
    subscribedFrom,
    fail: (error) => fail(error),
    headPosition: async () => events.at(-1)?.position,
    subscribe({ from, onResubscribe }): Subscription {
      subscribedFrom.push(from);
      const fault = faults.shift();
      let wake = (): void => undefined;
      let closed = false;
      async function* replay(): AsyncGenerator<RecordedEvent> {
        const fresh = events.filter((e) => from === 'start' || e.position > from);
        for (const [i, event] of fresh.entries()) {
          if (fault && i === fault.after) break;
          yield event;
        }
        if (fault?.then === 'end') return;
        if (fault?.then instanceof Error) throw fault.then;
        if (fault) onResubscribe?.(fault.then.resubscribe, 100);
        await new Promise<void>((resolve, reject) => (closed ? resolve() : ((wake = resolve), (fail = reject))));
      }
      return { [Symbol.asyncIterator]: replay, close: async () => void ((closed = true), wake()) };
    },
  };
}

/** A take on our GME order (SELL `tenths`/10 shares), or on someone else's order. */
function take(history: History, block: bigint, owner: `0x${string}` = OUR_OWNER) {
  const order = { owner, validInputs: [io('USDC')], validOutputs: [io('tGME')] };
  return history.log(takeOrderV2Log(order, { input: E18, output: 20_000_000n }), { tx: `tx ${block}`, logIndex: 0, block });
}

async function followUntilCaughtUp(follower: LedgerFollower, signal: AbortSignal): Promise<void> {
  follower.start(signal);
  await expect.poll(async () => (await follower.status()).caughtUp, { timeout: 2000, interval: 5 }).toBe(true);
}

describe('LedgerFollower', () => {
  it('keeps the newest trades and rejections within its retention, and a reorg takes a trade back out', async () => {
    const history = new History();
    const tokens = history.allTokens();
    const takes = [1n, 2n, 3n, 4n, 5n].map((b) => take(history, b));
    const foreign = [6n, 7n, 8n, 9n].map((b) => take(history, b, OTHER_OWNER));
    // The reorg removes one trade still in the buffer and one already dropped from it.
    const events = [...tokens, ...takes, ...foreign, history.logRemoved(takes[3]!), history.logRemoved(takes[0]!)];
    const follower = new LedgerFollower({ store: scriptedStore(events.map(recorded)), config, log, retention: 3 });
    const stop = new AbortController();
    await followUntilCaughtUp(follower, stop.signal);

    // Fewer than the retention: block 2 had been pushed out before the reorg took block 4 back (docs/http-api.md).
    expect(follower.trades().map((f) => f.blockNumber)).toEqual([3n, 5n]);
    expect(follower.trades(1).map((f) => f.blockNumber)).toEqual([5n]);
    expect(follower.trades(3, 'AAPL')).toEqual([]);
    expect(follower.rejections().map((r) => r.blockNumber)).toEqual([7n, 8n, 9n]);
    expect(follower.rejections(3, 'not_hedgeable')).toEqual([]);
    expect(follower.view.position('GME').totals.trades).toBe(3);
    expect(follower.progress()).toMatchObject({ state: 'following', eventsFolded: events.length, position: events.at(-1)!.position });
    stop.abort();
    await follower.stopped;
    expect(follower.progress().state).toBe('stopped');
  });

  it('a reorg takes a rejection back out of GET /rejected: the removed foreign take, and the clear its removal replays, leave the list; the others stay', async () => {
    const history = new History();
    const tokens = history.allTokens();
    const foreign = [1n, 2n, 3n].map((b) => take(history, b, OTHER_OWNER));
    const clear = history.log(clearV2Log({ owner: OUR_OWNER, validInputs: [io('tGME')], validOutputs: [io('USDC')] }, { owner: OTHER_OWNER, validInputs: [io('USDC')], validOutputs: [io('tGME')] }), { tx: 'clear', logIndex: 0, block: 4n });
    const closing = take(history, 5n, OTHER_OWNER); // closes the clear's transaction: unpaired_clear, counted
    const events = [...tokens, ...foreign, clear, closing, history.logRemoved(foreign[1]!), history.logRemoved(clear), history.logRemoved(closing)];
    const follower = new LedgerFollower({ store: scriptedStore(events.map(recorded)), config, log });
    const stop = new AbortController();
    await followUntilCaughtUp(follower, stop.signal);
    expect(follower.rejections().map((r) => [r.blockNumber, r.reason])).toEqual([[1n, 'not_ours'], [3n, 'not_ours']]);
    expect(follower.rejections(5, 'unpaired_clear')).toEqual([]);
    expect(Object.fromEntries(follower.view.rejectedByReason)).toEqual({ not_ours: 2 });
    stop.abort();
    await follower.stopped;
  });

  it('counts a corrupt event as a rejection and keeps folding', async () => {
    const history = new History();
    const good = [...history.allTokens(), take(history, 1n)].map(recorded);
    const corrupt = { ...recorded(take(history, 2n)), data: { chainId: 'base' } };
    const follower = new LedgerFollower({ store: scriptedStore([...good, corrupt]), config, log });
    const stop = new AbortController();
    await followUntilCaughtUp(follower, stop.signal);
    expect(follower.rejections()).toMatchObject([{ reason: 'corrupt_event', eventId: corrupt.id }]);
    expect(follower.trades()).toHaveLength(1);
    stop.abort();
    await follower.stopped;
  });

  it('lists last the ClearV2 that no AfterClear has followed at the ledger\'s end (GET /rejected), within the limit and the reason asked for', async () => {
    const history = new History();
    const before = [...history.allTokens(), take(history, 1n, OTHER_OWNER), take(history, 2n, OTHER_OWNER)];
    const clear = history.log(clearV2Log({ owner: OTHER_OWNER, validInputs: [io('USDC')], validOutputs: [io('tGME')] }, { owner: OTHER_OWNER, validInputs: [io('tGME')], validOutputs: [io('USDC')] }), { tx: 'clear', logIndex: 0, block: 3n });
    const events = [...before, clear].map(recorded);
    const follower = new LedgerFollower({ store: scriptedStore(events), config, log });
    const stop = new AbortController();
    await followUntilCaughtUp(follower, stop.signal);
    expect(follower.rejections().map((r) => [r.blockNumber, r.reason])).toEqual([[1n, 'not_ours'], [2n, 'not_ours'], [3n, 'unpaired_clear']]);
    expect(follower.rejections(2).map((r) => r.blockNumber)).toEqual([2n, 3n]);
    expect(follower.rejections(5, 'unpaired_clear')).toMatchObject([{ eventId: clear.id, detail: expect.stringContaining("the ledger's last so far") }]);
    expect(follower.rejections(5, 'not_ours')).toHaveLength(2);
    stop.abort();
    await follower.stopped;
  });

  it('resubscribes after its position when the store is briefly unavailable', async () => {
    const history = new History();
    const events = [...history.allTokens(), take(history, 1n), take(history, 2n)].map(recorded);
    const store = scriptedStore(events, [{ after: 3, then: new StoreUnavailable('database is locked') }, { after: 0, then: new StoreUnavailable('still locked') }]);
    const retries: string[] = [];
    const follower = new LedgerFollower({ store, config, log, backoffMs: { min: 1, max: 2 }, onRetry: (e) => retries.push(e.message) });
    const stop = new AbortController();
    await followUntilCaughtUp(follower, stop.signal);
    expect(retries).toEqual(['database is locked', 'still locked']);
    expect(store.subscribedFrom).toEqual(['start', events[2]!.position, events[2]!.position]);
    expect(follower.progress().eventsFolded).toBe(events.length);
    stop.abort();
    await follower.stopped;
  });

  it('retries on its own terms when a subscription reports that it resubscribes by itself', async () => {
    const history = new History();
    const events = [...history.allTokens(), take(history, 1n), take(history, 2n)].map(recorded);
    const store = scriptedStore(events, [{ after: 3, then: { resubscribe: new StoreUnavailable('not leader') } }]);
    const retries: string[] = [];
    const follower = new LedgerFollower({ store, config, log, backoffMs: { min: 1, max: 2 }, onRetry: (e) => retries.push(e.message) });
    const stop = new AbortController();
    await followUntilCaughtUp(follower, stop.signal);
    expect(retries).toEqual(['not leader']);
    expect(store.subscribedFrom).toEqual(['start', events[2]!.position]);
    expect(follower.progress()).toMatchObject({ state: 'following', eventsFolded: events.length });
    stop.abort();
    await follower.stopped;
  });

  it('shows an unreachable EventStoreDB: retrying, counted and logged', async () => {
    const store = await openStore('esdb://127.0.0.1:1?tls=false'); // nothing listens: every subscription is refused at once
    const retries: string[] = [];
    const { lines: warnings, log: warn } = capturedLog('warn');
    const follower = new LedgerFollower({ store, config, log: warn, backoffMs: { min: 10, max: 20 }, onRetry: (e) => retries.push(e.name) });
    const stop = new AbortController();
    follower.start(stop.signal);
    try {
      await expect.poll(() => retries.length, { timeout: 5000, interval: 10 }).toBeGreaterThanOrEqual(2);
      expect(follower.progress().state).toBe('retrying');
      expect(new Set(retries)).toEqual(new Set(['StoreUnavailable']));
      expect(warnings[0]).toMatchObject({ msg: 'store unavailable; resubscribing' });
    } finally {
      stop.abort();
      await follower.stopped;
      await store.close();
    }
  });

  it('follows again once resubscribed at the head, with no new event, and backs off from the start at the next outage', async () => {
    const history = new History();
    const events = [...history.allTokens(), take(history, 1n)].map(recorded);
    const store = scriptedStore(events, [{ after: events.length, then: new StoreUnavailable('database is locked') }]);
    const { lines: warnings, log: warn } = capturedLog('warn');
    const follower = new LedgerFollower({ store, config, log: warn, backoffMs: { min: 1, max: 50 } });
    const stop = new AbortController();
    const state = () => follower.progress().state;
    follower.start(stop.signal);
    await expect.poll(() => store.subscribedFrom.length).toBe(2);
    await expect.poll(state, { timeout: 2000, interval: 5 }).toBe('following');
    expect(await follower.status()).toMatchObject({ caughtUp: true, eventsFolded: events.length });

    await sleep(100); // up longer than the backoff's ceiling
    store.fail(new StoreUnavailable('locked again'));
    await expect.poll(() => store.subscribedFrom.length).toBe(3);
    await expect.poll(state, { timeout: 2000, interval: 5 }).toBe('following');
    expect(warnings.map((w) => w['retryInMs'])).toEqual([1, 1]);
    stop.abort();
    await follower.stopped;
  });

  it('keeps backing off while each new subscription fails after a quiet start, though the head can be read', async () => {
    const { lines: warnings, log: warn } = capturedLog('warn');
    // Reads work; every subscription is quiet for 150 ms (longer than a lull), then fails, as one that cannot connect.
    const store = {
      headPosition: async () => undefined,
      subscribe: ({ onResubscribe }: { onResubscribe?: (reason: StoreUnavailable, delayMs: number) => void }) => {
        let closed = false;
        let wake = () => {};
        const next = async (): Promise<IteratorResult<RecordedEvent>> => {
          await sleep(150);
          if (!closed) onResubscribe?.(new StoreUnavailable('refused'), 100);
          await new Promise<void>((resolve) => (closed ? resolve() : (wake = resolve)));
          return { done: true, value: undefined };
        };
        return { [Symbol.asyncIterator]: () => ({ next }), close: async () => void ((closed = true), wake()) };
      },
    };
    const follower = new LedgerFollower({ store, config, log: warn, backoffMs: { min: 1, max: 1000 } });
    const stop = new AbortController();
    follower.start(stop.signal);
    await expect.poll(() => warnings.length, { timeout: 5000, interval: 10 }).toBeGreaterThanOrEqual(4);
    stop.abort();
    await follower.stopped;
    expect(warnings.slice(0, 4).map((w) => w['retryInMs'])).toEqual([1, 2, 4, 8]);
  });

  it.each([
    ['an unexpected error', new Error('disk I/O error'), /ledger-follower stopped: disk I\/O error/],
    ['a subscription that ends by itself', 'end' as const, /subscription ended by itself/],
  ])('stops with a clear error on %s', async (_, then, message) => {
    const follower = new LedgerFollower({ store: scriptedStore([], [{ after: 0, then }]), config, log });
    follower.start(new AbortController().signal);
    await expect(follower.stopped).rejects.toThrow(FollowerFailed);
    await expect(follower.stopped).rejects.toThrow(message);
    expect(follower.progress().state).toBe('failed');
  });
});
