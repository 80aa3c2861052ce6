/**
 * The ids of a log's generations (recorded, removed, recorded again, …) and the ingester's index of
 * them (src/chain/recent-logs.ts): built from the stream on start, and kept on append, it holds each
 * log's latest generation under the log's deterministic id.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { encodeEvent, streams } from '../../src/domain/events.ts';
import { logEventId, logRecordedAgainEventId, logRemovedAgainEventId, logRemovedEventId, uuidV5 } from '../../src/domain/ids.ts';
import { RecentLogs, isRemoved, type StoredLog } from '../../src/chain/recent-logs.ts';
import { recordedLogId, type RecordedLog } from '../../src/chain/rpc-log.ts';
import { openStore } from '../../src/eventstore/url.ts';
import type { EventStore } from '../../src/eventstore/port.ts';
import { CHAIN_ID, History, ORDERBOOK, OUR_OWNER, io, takeOrderV2Log } from '../support/orderbook-logs.ts';
import { keccak256, stringToHex } from 'viem';

const tx = `0x${'ab'.repeat(32)}`;
const forkA = `0x${'aa'.repeat(32)}`;

describe('the ids of a log recorded again', () => {
  // New ledgers will hold these: pinned like the others (test/unit/ids.test.ts).
  it('are fixed', () => {
    expect(logRecordedAgainEventId('5002d8f3-4ee3-507a-8c1c-f4a41cdf92c4')).toBe(uuidV5('recorded-again:5002d8f3-4ee3-507a-8c1c-f4a41cdf92c4'));
    expect(logRecordedAgainEventId('5002d8f3-4ee3-507a-8c1c-f4a41cdf92c4')).toBe('282861dd-5dc2-5c5b-85f8-740077ebf284');
    expect(logRemovedAgainEventId('282861dd-5dc2-5c5b-85f8-740077ebf284')).toBe('38d1dd1b-4a6b-5925-b09f-26d793cbf595');
  });

  it('never repeat while the chain flips between two forks: each generation derives from the event before it', () => {
    // Recorded at A, removed, recorded again at B, removed, again at A, removed, … as the ingester names them.
    const ids = [logEventId(8453, tx, 7)];
    let removal = logRemovedEventId(8453, tx, 7, forkA);
    for (let generation = 1; generation <= 6; generation++) {
      const again = logRecordedAgainEventId(removal);
      ids.push(removal, again);
      removal = logRemovedAgainEventId(again);
    }
    ids.push(removal);
    expect(new Set(ids).size).toBe(ids.length);
    // By block hash alone, the third removal (back at A) would have had the first one's id.
    expect(logRemovedEventId(8453, tx, 7, forkA)).toBe(ids[1]);
  });
});

describe('RecentLogs: a log\'s generations', () => {
  const stores: EventStore[] = [];
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });

  const history = new History();
  const stream = streams.orderbook(CHAIN_ID, ORDERBOOK);
  const take = (tag: string, block: bigint): RecordedLog =>
    history.log(takeOrderV2Log({ owner: OUR_OWNER, validInputs: [io('USDC')], validOutputs: [io('tGME')] }, { input: 10n ** 17n, output: 2_000_000n }), { tx: tag, logIndex: 0, block }).data;
  const at = (log: RecordedLog, block: bigint, fork: string): RecordedLog => ({ ...log, blockNumber: block, blockHash: keccak256(stringToHex(`${fork} ${block}`)) });

  /** Appends generations of one log as the ingester does, keeping `index` up to date on each append; returns the events' ids. */
  async function generations(store: EventStore, index: RecentLogs, places: readonly RecordedLog[], removeLast: boolean): Promise<string[]> {
    const ids: string[] = [];
    const id = recordedLogId(places[0]!);
    const append = async (eventId: string, event: Parameters<typeof encodeEvent>[1]) => {
      const result = await store.append(stream, [encodeEvent(eventId, event)], index.revision);
      index.revision = result.nextRevision;
      ids.push(eventId);
    };
    for (const [i, log] of places.entries()) {
      const previous = index.get(id);
      const recordedId = previous === undefined ? id : logRecordedAgainEventId(previous.removalId!);
      await append(recordedId, { type: 'OrderbookLogRecorded', data: log });
      index.recorded(id, recordedId, log);
      if (i === places.length - 1 && !removeLast) break;
      const stored = index.get(id)!;
      const removalId = recordedId === id ? logRemovedEventId(CHAIN_ID, log.transactionHash, 0, log.blockHash) : logRemovedAgainEventId(recordedId);
      await append(removalId, { type: 'OrderbookLogRemoved', data: { ...log, logId: recordedId, reason: 'reorg' } });
      index.removed(stored, removalId);
    }
    return ids;
  }

  const view = (s: StoredLog | undefined) => s && { id: s.id, recordedId: s.recordedId, removalId: s.removalId, block: s.log.blockNumber, removed: isRemoved(s) };

  it('built from the stream, it holds the latest generation, as the index kept on append does; a later generation is live at its own block', async () => {
    const store = await openStore('sqlite::memory:');
    stores.push(store);
    const kept = await RecentLogs.load(store, stream);
    const t = take('flip', 500n);
    const other = take('other', 501n);
    await store.append(stream, [encodeEvent(recordedLogId(other), { type: 'OrderbookLogRecorded', data: other })], kept.revision);
    kept.revision = 0n;
    kept.recorded(recordedLogId(other), recordedLogId(other), other);
    // Recorded at A, removed, again at B, removed, again at A: live, at A.
    const ids = await generations(store, kept, [at(t, 500n, 'A'), at(t, 502n, 'B'), at(t, 500n, 'A')], false);
    expect(new Set(ids).size).toBe(5);

    const loaded = await RecentLogs.load(store, stream);
    const id = recordedLogId(t);
    expect(view(loaded.get(id))).toEqual({ id, recordedId: ids[4], removalId: null, block: 500n, removed: false });
    expect(view(loaded.get(id))).toEqual(view(kept.get(id)));
    expect(loaded.inRemovalOrder(loaded.liveIn(500n, 502n)).map((s) => s.recordedId)).toEqual([ids[4], recordedLogId(other)]);
    expect(loaded.blocks()).toEqual([{ block: 500n, hash: at(t, 500n, 'A').blockHash }, { block: 501n, hash: other.blockHash }]);
    expect(loaded.lastLive()).toEqual(other);
    expect(loaded.revision).toBe(kept.revision);
  });

  it('a removed latest generation counts nowhere; the removal names it', async () => {
    const store = await openStore('sqlite::memory:');
    stores.push(store);
    const kept = await RecentLogs.load(store, stream);
    const t = take('dropped twice', 600n);
    const ids = await generations(store, kept, [at(t, 600n, 'A'), at(t, 603n, 'B')], true);
    const loaded = await RecentLogs.load(store, stream);
    const stored = loaded.get(recordedLogId(t));
    expect(view(stored)).toEqual({ id: recordedLogId(t), recordedId: ids[2], removalId: ids[3], block: 603n, removed: true });
    expect(loaded.liveIn(0n, 1000n)).toEqual([]);
    expect(loaded.blocks()).toEqual([]);
    expect(loaded.lastLive()).toBeNull();
  });

  it('a place a rescan found for one generation is not taken for a later one (the checkpoint names the generation)', async () => {
    const store = await openStore('sqlite::memory:');
    stores.push(store);
    const kept = await RecentLogs.load(store, stream);
    const t = take('moved', 700n);
    const first = at(t, 700n, 'A');
    await generations(store, kept, [first], false);
    kept.seenAt(recordedLogId(t), at(t, 705n, 'C')); // the first generation re-mined at 705
    // Not vouched for until the rescan's events are appended through 705: its recorded block stands for it.
    expect(kept.blocks()).toEqual([{ block: 700n, hash: first.blockHash }]);
    expect(kept.liveIn(705n, 705n).map((s) => s.recordedId)).toEqual([recordedLogId(t)]);
    const unvouched = kept.movedText();
    const restarted = await RecentLogs.load(store, stream, undefined, { moved: async () => unvouched });
    expect(restarted.movedText()).toBe(unvouched);
    expect(restarted.blocks()).toEqual([{ block: 700n, hash: first.blockHash }]);
    expect(restarted.liveIn(705n, 705n).map((s) => s.recordedId)).toEqual([recordedLogId(t)]);
    kept.vouch(704n);
    expect(kept.movedText()).toBe(unvouched);
    kept.vouch(705n);
    const saved = kept.movedText();
    expect(kept.blocks()).toEqual([{ block: 705n, hash: at(t, 705n, 'C').blockHash }]);

    // A reorg drops it; it is recorded again at 702.
    const stored = kept.get(recordedLogId(t))!;
    const removalId = logRemovedEventId(CHAIN_ID, t.transactionHash, 0, first.blockHash);
    const result = await store.append(stream, [encodeEvent(removalId, { type: 'OrderbookLogRemoved', data: { ...first, logId: stored.recordedId, reason: 'reorg' } })], kept.revision);
    const again = at(t, 702n, 'B');
    await store.append(stream, [encodeEvent(logRecordedAgainEventId(removalId), { type: 'OrderbookLogRecorded', data: again })], result.nextRevision);

    const loaded = await RecentLogs.load(store, stream, undefined, { moved: async () => saved });
    expect(loaded.blocks()).toEqual([{ block: 702n, hash: again.blockHash }]);
    expect(loaded.liveIn(702n, 702n).map((s) => s.recordedId)).toEqual([logRecordedAgainEventId(removalId)]);
  });
});
