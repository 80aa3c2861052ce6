/**
 * The EventStore contract: every adapter runs this one suite (see *.contract.test.ts). Semantics
 * are EventStoreDB's (shared spec eventstore.md). Every test uses fresh random stream names and
 * reads only its own prefixes or positions, so the suite also runs against a shared server.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import * as E from 'fp-ts/lib/Either.js';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeEvent, streams } from '../../src/domain/events.ts';
import { ANY, asPosition, comparePositions, NO_STREAM, type EventStore, type From, type NewEvent, type RecordedEvent } from '../../src/eventstore/port.ts';
import type { ConsumeResult, RaceRound } from '../support/store-child.ts';
import { collect, event, events, hedgeRequested, idsOf, waitingForLive } from '../support/store-fixtures.ts';
import { runChild, StoreChild } from '../support/store-process.ts';

export interface StoreHarness {
  /** A fresh store: empty, unless it is a shared server. */
  open(): Promise<EventStore>;
  /** Another connection to the same store as `first`, for concurrency tests. */
  openSecondWriter?(first: EventStore): Promise<EventStore>;
  /** A URL another process can open, naming the store open() returned last; for restart tests. */
  childProcessUrl?(): string | undefined;
}

// ---- helpers ----

/** Random names for one test: `stream('abc', 1)` is `abc<tag>-1`, all under `prefix('abc')`. */
function names() {
  const tag = randomBytes(4).toString('hex');
  return { stream: (category: string, n = 0) => `${category}${tag}-${n}`, prefix: (category: string) => `${category}${tag}-` };
}

/** Where this test's reads of the global order start: the head before it wrote anything. */
const startOf = async (store: EventStore): Promise<From> => (await store.headPosition()) ?? 'start';

function expectIncreasing(recorded: readonly RecordedEvent[]): void {
  recorded.slice(1).forEach((e, i) => expect(comparePositions(recorded[i]!.position, e.position)).toBe(-1));
}

const wrongVersion = (stream: string, expected: bigint | 'no_stream' | 'any', actual: bigint | 'no_stream') =>
  expect.objectContaining({ kind: 'WrongExpectedVersion', stream, expected, actual });

// ---- the suite ----

export function describeStoreContract(name: string, harness: StoreHarness): void {
  describe(`EventStore contract: ${name}`, () => {
    const opened: EventStore[] = [];
    const open = async (): Promise<EventStore> => {
      const store = await harness.open();
      opened.push(store);
      return store;
    };
    const openSecond = async (first: EventStore): Promise<EventStore> => {
      const store = await harness.openSecondWriter!(first);
      opened.push(store);
      return store;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((store) => store.close()));
    });
    // A store without a second connection or a file another process can open (in memory) skips
    // those tests; the reason shows in the test name.
    const needs = (what: string, has: boolean) => (title: string, body: () => Promise<void>) =>
      has ? it(title, body) : it.skip(`${title} (skipped: ${name} has no ${what})`, body);
    const withSecondWriter = needs('second connection', harness.openSecondWriter !== undefined);
    const withChildProcess = needs('file another process can open', harness.childProcessUrl !== undefined);

    describe('appending and reading', () => {
      it('round-trips data, metadata, types and ids with consecutive revisions and increasing positions', async () => {
        const store = await open();
        const s = names().stream('roundtrip');
        const first = [
          event('Opened', { n: 1, big: '123456789012345678901234567890', nested: { list: [1, 'two', null, true, 0.5] } }, { causationId: 'c1' }),
          event('Noted', [1, { a: [] }]),
        ];
        const second = [event('Closed', { text: 'ünïcödé €' }, { n: 0 }), event('Closed', {}, false)];
        expect(await store.append(s, first, NO_STREAM)).toEqual({ nextRevision: 1n, written: true });
        expect(await store.append(s, second, 1n)).toEqual({ nextRevision: 3n, written: true });

        const read = await collect(store.readStream(s));
        expect(read.map(({ stream, id, type, revision, data, metadata }) => ({ stream, id, type, revision, data, metadata }))).toEqual(
          [...first, ...second].map((e, i) => ({ stream: s, id: e.id, type: e.type, revision: BigInt(i), data: e.data, metadata: e.metadata ?? null })),
        );
        expectIncreasing(read);
      });

      it('readStream honours fromRevision and maxCount; past the end is empty, not an error', async () => {
        const store = await open();
        const s = names().stream('window');
        const written = events(6);
        await store.append(s, written, NO_STREAM);
        expect(idsOf(await collect(store.readStream(s, { fromRevision: 2n, maxCount: 3 })))).toEqual(idsOf(written.slice(2, 5)));
        expect(idsOf(await collect(store.readStream(s, { fromRevision: 4n })))).toEqual(idsOf(written.slice(4)));
        expect(await collect(store.readStream(s, { fromRevision: 6n }))).toEqual([]);
      });

      it('readLastEvent returns the last event, or undefined for a missing stream', async () => {
        const store = await open();
        const { stream } = names();
        const written = events(3);
        await store.append(stream('last'), written, NO_STREAM);
        expect(await store.readLastEvent(stream('last'))).toMatchObject({ id: written[2]!.id, revision: 2n });
        expect(await store.readLastEvent(stream('missing'))).toBeUndefined();
      });

      it('reading a missing stream throws StreamNotFound while iterating', async () => {
        const store = await open();
        const missing = names().stream('missing');
        const iterable = store.readStream(missing);
        await expect(collect(iterable)).rejects.toMatchObject({ kind: 'StreamNotFound', stream: missing });
      });

      it('readAll keeps one global order across streams and filters by stream prefixes', async () => {
        const store = await open();
        const { stream, prefix } = names();
        const from = await startOf(store);
        const plan = [stream('alpha', 1), stream('beta', 1), stream('alpha', 2), stream('gamma', 1), stream('alpha', 1), stream('beta', 1)];
        const appended: { stream: string; id: string }[] = [];
        for (const s of plan) {
          const e = event();
          await store.append(s, [e], ANY);
          appended.push({ stream: s, id: e.id });
        }
        const matching = (...categories: string[]) =>
          idsOf(appended.filter((a) => categories.some((c) => a.stream.startsWith(prefix(c)))));

        const alphaBeta = await collect(store.readAll({ from, prefixes: [prefix('alpha'), prefix('beta')] }));
        expect(idsOf(alphaBeta)).toEqual(matching('alpha', 'beta'));
        expectIncreasing(alphaBeta);
        expect(idsOf(await collect(store.readAll({ from, prefixes: [prefix('gamma')] })))).toEqual(matching('gamma'));
        expect(idsOf(await collect(store.readAll({ from, prefixes: [prefix('alpha')], maxCount: 2 })))).toEqual(matching('alpha').slice(0, 2));

        const ours = new Set(idsOf(appended));
        const everything = await collect(store.readAll({ from }));
        expect(idsOf(everything).filter((id) => ours.has(id))).toEqual(idsOf(appended));
      });

      it('maxCount 0 reads nothing, from a stream or from the global order; a missing stream is still StreamNotFound', async () => {
        const store = await open();
        const { stream, prefix } = names();
        const from = await startOf(store);
        await store.append(stream('none'), events(3), NO_STREAM);
        expect(await collect(store.readStream(stream('none'), { maxCount: 0 }))).toEqual([]);
        expect(await collect(store.readAll({ from, prefixes: [prefix('none')], maxCount: 0 }))).toEqual([]);
        await expect(collect(store.readStream(stream('missing'), { maxCount: 0 }))).rejects.toMatchObject({ kind: 'StreamNotFound' });
      });

      it('readAll from a position starts after it', async () => {
        const store = await open();
        const { stream, prefix } = names();
        const from = await startOf(store);
        await store.append(stream('excl'), events(4), NO_STREAM);
        const all = await collect(store.readAll({ from, prefixes: [prefix('excl')] }));
        const after = await collect(store.readAll({ from: all[1]!.position, prefixes: [prefix('excl')] }));
        expect(idsOf(after)).toEqual(idsOf(all.slice(2)));
      });

      it('one event has one fixed-width position, in its stream, in the global order, as last event and in a subscription', async () => {
        const store = await open();
        const { stream, prefix } = names();
        const from = await startOf(store);
        await store.append(stream('pos', 1), events(3), NO_STREAM);
        await store.append(stream('pos', 2), events(2), NO_STREAM);
        await store.append(stream('pos', 1), events(1), 2n);
        const global = await collect(store.readAll({ from, prefixes: [prefix('pos')] }));
        const byId = new Map(global.map((e) => [e.id, e.position]));
        const inStreams = [...(await collect(store.readStream(stream('pos', 1)))), ...(await collect(store.readStream(stream('pos', 2))))];
        expect(inStreams.map((e) => e.position)).toEqual(inStreams.map((e) => byId.get(e.id)));
        expect((await store.readLastEvent(stream('pos', 2)))?.position).toBe(byId.get(inStreams.at(-1)!.id));
        const subscription = store.subscribe({ from, prefixes: [prefix('pos')] });
        const delivered: RecordedEvent[] = [];
        for await (const e of subscription) if (delivered.push(e) === global.length) break;
        expect(delivered.map((e) => [e.id, e.position])).toEqual(global.map((e) => [e.id, e.position]));
        // Opaque, but written at a fixed width, so plain string order (JSON, logs, checkpoints) is the store's order.
        const widths = new Set(global.map((e) => e.position.length));
        expect(widths.size).toBe(1);
        const sorted = [...global].sort((a, b) => (a.position < b.position ? -1 : a.position > b.position ? 1 : 0));
        expect(idsOf(sorted)).toEqual(idsOf(global));
        expectIncreasing(global);
      });

      it('prefixes are literal and case-sensitive: no wildcards, no patterns', async () => {
        const store = await open();
        const tag = randomBytes(4).toString('hex');
        const base = `lit${tag}`;
        const from = await startOf(store);
        const suffixes = ['a.c', 'abc', 'A.c', 'a_c', 'a%c', 'a*c'];
        const ids = new Map<string, string>();
        for (const n of suffixes) {
          const e = event();
          await store.append(`${base}${n}-1`, [e], NO_STREAM);
          ids.set(n, e.id);
        }
        const read = async (...prefixes: string[]) =>
          idsOf(await collect(store.readAll({ from, prefixes: prefixes.map((p) => `${base}${p}`) })));
        expect(await read('a.c')).toEqual([ids.get('a.c')]);
        expect(await read('a_c')).toEqual([ids.get('a_c')]);
        expect(await read('a%')).toEqual([ids.get('a%c')]);
        expect(await read('a*')).toEqual([ids.get('a*c')]);
        expect(await read('A')).toEqual([ids.get('A.c')]);
        expect(await read('ab', 'a.')).toEqual([ids.get('a.c'), ids.get('abc')]);
      });

      it('readStream reads exactly its stream, not streams whose names extend it', async () => {
        const store = await open();
        const { stream } = names();
        const mine = events(2);
        await store.append(stream('exactname', 1), mine, NO_STREAM);
        await store.append(stream('exactname', 10), events(1), NO_STREAM);
        await store.append(`${stream('exactname', 1)}x`, events(1), NO_STREAM);
        expect(idsOf(await collect(store.readStream(stream('exactname', 1))))).toEqual(idsOf(mine));
        expect((await store.readLastEvent(stream('exactname', 1)))?.id).toBe(mine[1]!.id);
      });

      it('a position that is not the store\'s own is a StoreConfigError, and no checkpoint is saved with it', async () => {
        const store = await open();
        const name = names().prefix('badpos');
        const bad = asPosition('not-a-position');
        await expect(collect(store.readAll({ from: bad }))).rejects.toMatchObject({ kind: 'StoreConfigError' });
        const subscription = store.subscribe({ from: bad });
        await expect(subscription[Symbol.asyncIterator]().next()).rejects.toMatchObject({ kind: 'StoreConfigError' });
        await subscription.close();
        await expect(store.saveCheckpoint(name, { position: bad })).rejects.toMatchObject({ kind: 'StoreConfigError' });
        expect(await store.readCheckpoint(name)).toBeUndefined();
      });

      it('headPosition is at or after the last appended event', async () => {
        const store = await open();
        const s = names().stream('head');
        await store.append(s, events(2), NO_STREAM);
        const last = await store.readLastEvent(s);
        const head = await store.headPosition();
        expect(head).toBeDefined();
        expect(comparePositions(head!, last!.position)).toBeGreaterThanOrEqual(0);
      });

      it('headPosition of some prefixes is the newest event of those streams, not of the streams after it', async () => {
        const store = await open();
        const { stream, prefix } = names();
        await store.append(stream('mine', 1), events(2), NO_STREAM);
        await store.append(stream('theirs', 1), events(3), NO_STREAM); // another application, writing after us
        const mine = await store.readLastEvent(stream('mine', 1));
        const theirs = await store.readLastEvent(stream('theirs', 1));

        expect(await store.headPosition({ prefixes: [prefix('mine')] })).toBe(mine!.position);
        expect(await store.headPosition({ prefixes: [prefix('theirs'), prefix('mine')] })).toBe(theirs!.position);
        expect(comparePositions((await store.headPosition())!, theirs!.position)).toBeGreaterThanOrEqual(0);
        expect(await store.headPosition({ prefixes: [prefix('none')] })).toBeUndefined();

        // Asked again after more writes: it sees a newer event of its streams, and keeps the old one past another application's.
        await store.append(stream('mine', 2), events(1), NO_STREAM);
        await store.append(stream('theirs', 1), events(2), 2n);
        const newer = await store.readLastEvent(stream('mine', 2));
        expect(await store.headPosition({ prefixes: [prefix('mine')] })).toBe(newer!.position);
        await store.append(stream('theirs', 1), events(2), 4n);
        expect(await store.headPosition({ prefixes: [prefix('mine')] })).toBe(newer!.position);
        expect(await store.headPosition({ prefixes: [prefix('none')] })).toBeUndefined();
      });
    });

    describe('expected revisions', () => {
      it('NO_STREAM on an existing stream is a WrongExpectedVersion naming expected and actual', async () => {
        const store = await open();
        const s = names().stream('nostream');
        const written = events(2);
        await store.append(s, written, NO_STREAM);
        await expect(store.append(s, events(1), NO_STREAM)).rejects.toEqual(wrongVersion(s, NO_STREAM, 1n));
        expect(idsOf(await collect(store.readStream(s)))).toEqual(idsOf(written));
      });

      it('a wrong exact revision is a WrongExpectedVersion, on existing and missing streams', async () => {
        const store = await open();
        const { stream } = names();
        const written = events(2);
        await store.append(stream('exact'), written, NO_STREAM);
        await expect(store.append(stream('exact'), events(1), 5n)).rejects.toEqual(wrongVersion(stream('exact'), 5n, 1n));
        await expect(store.append(stream('exact'), events(1), 0n)).rejects.toEqual(wrongVersion(stream('exact'), 0n, 1n));
        await expect(store.append(stream('none'), events(1), 0n)).rejects.toEqual(wrongVersion(stream('none'), 0n, NO_STREAM));
        expect(idsOf(await collect(store.readStream(stream('exact'))))).toEqual(idsOf(written));
        await expect(collect(store.readStream(stream('none')))).rejects.toMatchObject({ kind: 'StreamNotFound' });
      });

      it('ANY appends to missing and existing streams', async () => {
        const store = await open();
        const s = names().stream('any');
        expect(await store.append(s, events(2), ANY)).toEqual({ nextRevision: 1n, written: true });
        expect(await store.append(s, events(1), ANY)).toEqual({ nextRevision: 2n, written: true });
        expect(await collect(store.readStream(s))).toHaveLength(3);
      });

      it('an empty append only checks the expected revision and writes nothing', async () => {
        const store = await open();
        const { stream } = names();
        expect(await store.append(stream('empty'), [], NO_STREAM)).toEqual({ nextRevision: -1n, written: false });
        expect(await store.readLastEvent(stream('empty'))).toBeUndefined();
        await store.append(stream('empty'), events(2), NO_STREAM);
        expect(await store.append(stream('empty'), [], 1n)).toEqual({ nextRevision: 1n, written: false });
        expect(await store.append(stream('empty'), [], ANY)).toEqual({ nextRevision: 1n, written: false });
        await expect(store.append(stream('empty'), [], 0n)).rejects.toEqual(wrongVersion(stream('empty'), 0n, 1n));
        await expect(store.append(stream('empty'), [], NO_STREAM)).rejects.toEqual(wrongVersion(stream('empty'), NO_STREAM, 1n));
        expect(await collect(store.readStream(stream('empty')))).toHaveLength(2);
      });
    });

    describe('idempotency (same ids at the same expected revision)', () => {
      it('a retry after a lost acknowledgement succeeds and writes nothing, even after the stream moved on', async () => {
        const store = await open();
        const s = names().stream('retry');
        const batch = events(2);
        const next = events(1);
        const later = events(1);
        await store.append(s, batch, NO_STREAM); // succeeded, but the client never heard back
        expect(await store.append(s, batch, NO_STREAM)).toEqual({ nextRevision: 1n, written: false });
        await store.append(s, next, 1n);
        expect(await store.append(s, next, 1n)).toEqual({ nextRevision: 2n, written: false });
        await store.append(s, later, 2n);
        expect(await store.append(s, batch, NO_STREAM)).toEqual({ nextRevision: 1n, written: false });
        expect(await store.append(s, next, 1n)).toEqual({ nextRevision: 2n, written: false });
        expect(idsOf(await collect(store.readStream(s)))).toEqual(idsOf([...batch, ...next, ...later]));
      });

      it('different ids at an already used expected revision are a WrongExpectedVersion with expected and actual', async () => {
        const store = await open();
        const s = names().stream('differ');
        const written = events(3);
        await store.append(s, written, NO_STREAM);
        await expect(store.append(s, events(1), 0n)).rejects.toEqual(wrongVersion(s, 0n, 2n));
        await expect(store.append(s, events(2), NO_STREAM)).rejects.toEqual(wrongVersion(s, NO_STREAM, 2n));
        expect(idsOf(await collect(store.readStream(s)))).toEqual(idsOf(written));
      });

      it('a partial match is a conflict, never a partial write; a prefix of the stored batch is a repeat', async () => {
        const store = await open();
        const s = names().stream('partial');
        const [a, b] = events(2) as [NewEvent, NewEvent];
        await store.append(s, [a, b], NO_STREAM);
        await expect(store.append(s, [a, event()], NO_STREAM)).rejects.toEqual(wrongVersion(s, NO_STREAM, 1n));
        await expect(store.append(s, [b, event()], 0n)).rejects.toEqual(wrongVersion(s, 0n, 1n)); // runs past the end
        expect(await store.append(s, [a], NO_STREAM)).toEqual({ nextRevision: 0n, written: false });
        expect(idsOf(await collect(store.readStream(s)))).toEqual([a.id, b.id]);
      });
    });

    describe('idempotency: what a repeat is keyed on', () => {
      it('keyed on the ids: the same ids with other types or data at the same revision write nothing', async () => {
        const store = await open();
        const s = names().stream('keyed');
        const [a, b] = events(2) as [NewEvent, NewEvent];
        await store.append(s, [a, b], NO_STREAM);
        const altered = [{ ...a, type: 'Other', data: { changed: true } }, { ...b, metadata: { changed: true } }];
        expect(await store.append(s, altered, NO_STREAM)).toEqual({ nextRevision: 1n, written: false });
        const stored = await collect(store.readStream(s));
        expect(stored.map(({ id, type, data }) => ({ id, type, data }))).toEqual([a, b].map(({ id, type, data }) => ({ id, type, data })));
      });

      it('the same ids in another order, or a later part of the batch, are a conflict', async () => {
        const store = await open();
        const s = names().stream('order');
        const [a, b, c] = events(3) as [NewEvent, NewEvent, NewEvent];
        await store.append(s, [a, b, c], NO_STREAM);
        await expect(store.append(s, [b, a], NO_STREAM)).rejects.toEqual(wrongVersion(s, NO_STREAM, 2n));
        await expect(store.append(s, [b, c], NO_STREAM)).rejects.toEqual(wrongVersion(s, NO_STREAM, 2n));
        await expect(store.append(s, [a, c], NO_STREAM)).rejects.toEqual(wrongVersion(s, NO_STREAM, 2n));
        expect(await store.append(s, [b, c], 0n)).toEqual({ nextRevision: 2n, written: false });
        expect(idsOf(await collect(store.readStream(s)))).toEqual([a.id, b.id, c.id]);
      });

      it('a repeat adds nothing to the global order: readAll and subscriptions see each event once', async () => {
        const store = await open();
        const { stream, prefix } = names();
        const from = await startOf(store);
        const batch = events(2);
        const last = event();
        await store.append(stream('once'), batch, NO_STREAM);
        await store.append(stream('once'), batch, NO_STREAM);
        await store.append(stream('once'), [batch[1]!], 0n);
        await store.append(stream('once'), [last], 1n);
        const all = await collect(store.readAll({ from, prefixes: [prefix('once')] }));
        expect(idsOf(all)).toEqual(idsOf([...batch, last]));
        const delivered: string[] = [];
        for await (const e of store.subscribe({ from, prefixes: [prefix('once')] })) if (delivered.push(e.id) === 3) break;
        expect(delivered).toEqual(idsOf([...batch, last]));
      });

      withSecondWriter('two connections appending one batch at one expected revision at once: both succeed, exactly one writes', async () => {
        const first = await open();
        const second = await openSecond(first);
        const s = names().stream('twin');
        for (let r = 0; r < 20; r++) {
          const batch = [event('Twin', { r }), event('Twin', { r })];
          const expected = r === 0 ? NO_STREAM : BigInt(2 * r - 1);
          const [one, two] = r % 2 === 0 ? [first, second] : [second, first];
          const results = await Promise.all([one.append(s, batch, expected), two.append(s, batch, expected)]);
          expect(results.map((x) => x.nextRevision)).toEqual([BigInt(2 * r + 1), BigInt(2 * r + 1)]);
          expect(results.map((x) => x.written).sort()).toEqual([false, true]);
        }
        expect(await collect(first.readStream(s))).toHaveLength(40);
      });
    });

    describe('concurrent writers', () => {
      withSecondWriter('two connections racing at one expected revision: one wins, the other gets WrongExpectedVersion', async () => {
        const first = await open();
        const second = await openSecond(first);
        const s = names().stream('race');
        const winners: string[] = [];
        for (let r = 0; r < 20; r++) {
          const [x, y] = [event('Raced'), event('Raced')];
          const expected = r === 0 ? NO_STREAM : BigInt(r - 1);
          const [one, two] = r % 2 === 0 ? [first, second] : [second, first];
          const settled = await Promise.allSettled([one.append(s, [x], expected), two.append(s, [y], expected)]);
          const won = settled.filter((o) => o.status === 'fulfilled');
          const lost = settled.filter((o) => o.status === 'rejected');
          expect(won).toHaveLength(1);
          expect(lost[0]?.reason).toEqual(wrongVersion(s, expected, BigInt(r)));
          winners.push(settled[0].status === 'fulfilled' ? x.id : y.id);
        }
        const stored = await collect(first.readStream(s));
        expect(idsOf(stored)).toEqual(winners);
        expect(stored.map((e) => e.revision)).toEqual(winners.map((_, i) => BigInt(i)));
      });

      withChildProcess('two processes racing appends to one stream: one winner per revision, no duplicates, no gaps', async () => {
        const store = await open();
        const url = harness.childProcessUrl!()!;
        const s = names().stream('procrace');
        const rounds = 40;
        const children = [new StoreChild(['race', url, s, String(rounds)]), new StoreChild(['race', url, s, String(rounds)])];
        await Promise.all(children.map((c) => c.ready()));
        children.forEach((c) => c.send('go'));
        const [p, q] = await Promise.all(children.map((c) => c.result<RaceRound[]>()));

        const stored = await collect(store.readStream(s));
        expect(stored.map((e) => e.revision)).toEqual(Array.from({ length: rounds }, (_, r) => BigInt(r)));
        stored.forEach((e, r) => {
          const outcomes = [p![r]!, q![r]!];
          expect(outcomes.map((o) => o.outcome).sort()).toEqual(['WrongExpectedVersion', 'won']);
          expect(e.id).toBe(outcomes.find((o) => o.outcome === 'won')!.id);
        });
      });
    });

    describe('subscriptions', () => {
      it('catch up on history, then deliver live appends, skipping other prefixes', async () => {
        const store = await open();
        const { stream, prefix } = names();
        const from = await startOf(store);
        const [e1, e2, e3] = events(3) as [NewEvent, NewEvent, NewEvent];
        await store.append(stream('sub'), [e1], NO_STREAM);
        await store.append(stream('other'), events(1), NO_STREAM);
        await store.append(stream('sub', 2), [e2], NO_STREAM);
        const subscription = store.subscribe({ from, prefixes: [prefix('sub')] });
        const it = subscription[Symbol.asyncIterator]();
        expect((await it.next()).value).toMatchObject({ id: e1.id, stream: stream('sub'), revision: 0n });
        expect((await it.next()).value).toMatchObject({ id: e2.id, stream: stream('sub', 2) });

        const live = it.next();
        await waitingForLive();
        await store.append(stream('other'), events(1), 0n);
        await store.append(stream('sub'), [e3], 0n);
        expect((await live).value).toMatchObject({ id: e3.id, revision: 1n });
        await subscription.close();
      });

      it('a subscription from a position starts after it, and takes several prefixes', async () => {
        const store = await open();
        const { stream, prefix } = names();
        const from = await startOf(store);
        await store.append(stream('subx'), events(2), NO_STREAM);
        await store.append(stream('suby'), events(1), NO_STREAM);
        await store.append(stream('subz'), events(1), NO_STREAM);
        await store.append(stream('subx'), events(1), 1n);
        const all = await collect(store.readAll({ from, prefixes: [prefix('subx'), prefix('suby')] }));
        expect(all).toHaveLength(4);
        const subscription = store.subscribe({ from: all[0]!.position, prefixes: [prefix('subx'), prefix('suby')] });
        const delivered: RecordedEvent[] = [];
        for await (const e of subscription) if (delivered.push(e) === 3) break;
        expect(idsOf(delivered)).toEqual(idsOf(all.slice(1)));
      });

      it('a subscription or read from a position past the head delivers only events after it', async () => {
        // Such a position comes from elsewhere: say, a checkpoint kept while the store was restored from an older backup.
        const { stream, prefix } = names();
        const ahead = await open();
        await ahead.append(stream('ahead'), events(6), NO_STREAM);
        const past = (await collect(ahead.readStream(stream('ahead'))))[4]!.position;
        const store = await open(); // empty, unless it is a shared server
        const subscription = store.subscribe({ from: past, prefixes: [prefix('behind')] });
        const live = subscription[Symbol.asyncIterator]().next();
        await waitingForLive();
        await store.append(stream('behind'), events(6), NO_STREAM);
        const after = (await collect(store.readStream(stream('behind')))).filter((e) => comparePositions(e.position, past) > 0);
        expect((await live).value?.id).toBe(after[0]?.id);
        expect(idsOf(await collect(store.readAll({ from: past, prefixes: [prefix('behind')] })))).toEqual(idsOf(after));
        await subscription.close();
      });

      withSecondWriter('live appends through another connection reach the subscription', async () => {
        const store = await open();
        const other = await openSecond(store);
        const { stream, prefix } = names();
        const subscription = store.subscribe({ from: await startOf(store), prefixes: [prefix('conn')] });
        const live = subscription[Symbol.asyncIterator]().next();
        await waitingForLive();
        const e = event();
        await other.append(stream('conn'), [e], NO_STREAM);
        expect((await live).value).toMatchObject({ id: e.id });
        await subscription.close();
      });

      withChildProcess('live appends by another process reach the subscription', async () => {
        const store = await open();
        const { stream, prefix } = names();
        const subscription = store.subscribe({ from: await startOf(store), prefixes: [prefix('proc')] });
        const live = subscription[Symbol.asyncIterator]().next();
        await waitingForLive();
        const id = randomUUID();
        await runChild(['append', harness.childProcessUrl!()!, stream('proc'), id]);
        expect((await live).value).toMatchObject({ id, stream: stream('proc') });
        await subscription.close();
      });

      it('delivers one event per next(), in order, even when next() calls overlap', async () => {
        const store = await open();
        const { stream, prefix } = names();
        const from = await startOf(store);
        const written = events(5);
        await store.append(stream('overlap'), written, NO_STREAM);
        const subscription = store.subscribe({ from, prefixes: [prefix('overlap')] });
        const it = subscription[Symbol.asyncIterator]();
        const firstThree = await Promise.all([it.next(), it.next(), it.next()]);
        expect(firstThree.map((r) => r.value?.id)).toEqual(idsOf(written.slice(0, 3)));
        expect((await it.next()).value?.id).toBe(written[3]!.id);
        await subscription.close();
      });

      it('a consumer that appends while handling each event sees every event once, in order', async () => {
        const store = await open();
        const { stream, prefix } = names();
        const s = stream('loop');
        const from = await startOf(store);
        await store.append(s, [event('Step', { n: 0 })], NO_STREAM);
        const seen: bigint[] = [];
        for await (const e of store.subscribe({ from, prefixes: [prefix('loop')] })) {
          seen.push(e.revision);
          await new Promise((resolve) => setTimeout(resolve, 1)); // slow, async handling
          if (e.revision === 9n) break;
          await store.append(s, [event('Step', { n: Number(e.revision) + 1 })], e.revision);
        }
        expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => BigInt(i)));
      });

      it('close() ends a pending next() with done', async () => {
        const store = await open();
        const subscription = store.subscribe({ from: await startOf(store), prefixes: [names().prefix('closing')] });
        const pending = subscription[Symbol.asyncIterator]().next();
        await subscription.close();
        expect(await pending).toMatchObject({ done: true });
      });

      it('closing the store ends its subscriptions', async () => {
        const store = await harness.open();
        const subscription = store.subscribe({ from: await startOf(store), prefixes: [names().prefix('closing')] });
        const pending = subscription[Symbol.asyncIterator]().next();
        await store.close();
        expect(await pending).toMatchObject({ done: true });
      });

      it('break out of for-await releases the subscription', async () => {
        const store = await open();
        const { stream, prefix } = names();
        const from = await startOf(store);
        await store.append(stream('brk'), events(3), NO_STREAM);
        const subscription = store.subscribe({ from, prefixes: [prefix('brk')] });
        for await (const e of subscription) if (e.revision === 0n) break;
        expect(await subscription[Symbol.asyncIterator]().next()).toMatchObject({ done: true });
      });
    });

    describe('checkpoints', () => {
      it('are undefined until saved, then read back as saved, the latest winning', async () => {
        const store = await open();
        const { stream } = names();
        const name = names().prefix('checkpoint');
        expect(await store.readCheckpoint(name)).toBeUndefined();
        await store.append(stream('cp'), events(2), NO_STREAM);
        const [p0, p1] = (await collect(store.readStream(stream('cp')))).map((e) => e.position);
        await store.saveCheckpoint(name, { position: p0!, snapshot: '{"n":1}' });
        expect(await store.readCheckpoint(name)).toEqual({ position: p0, snapshot: '{"n":1}' });
        await store.saveCheckpoint(name, { position: p1! });
        expect(await store.readCheckpoint(name)).toEqual({ position: p1 });
      });

      it('are not events: reads and subscriptions of the global order without prefixes never see them', async () => {
        const store = await open();
        const { stream } = names();
        const name = names().prefix('notevent');
        const from = await startOf(store);
        const [e1, e2] = events(2) as [NewEvent, NewEvent];
        await store.append(stream('cpe'), [e1], NO_STREAM);
        const p1 = (await store.readLastEvent(stream('cpe')))!.position;
        await store.saveCheckpoint(name, { position: p1, snapshot: '{}' });
        await store.append(stream('cpe'), [e2], 0n);
        await store.saveCheckpoint(name, { position: p1 });
        const everything = await collect(store.readAll({ from }));
        expect(everything.filter((e) => e.stream.includes(name) || e.type.startsWith('$'))).toEqual([]);
        expect(idsOf(everything).filter((id) => id === e1.id || id === e2.id)).toEqual([e1.id, e2.id]);
        const delivered: RecordedEvent[] = [];
        for await (const e of store.subscribe({ from })) if (delivered.push(e) && e.id === e2.id) break;
        expect(delivered.filter((e) => e.stream.includes(name) || e.stream.startsWith('$'))).toEqual([]);
      });

      withChildProcess('a new process resumes from its checkpoint after a restart: no loss, no repeat', async () => {
        const store = await open();
        const url = harness.childProcessUrl!()!;
        const { stream, prefix } = names();
        const from = await startOf(store);
        const name = names().prefix('resume');
        const before = events(3);
        await store.append(stream('res', 1), before.slice(0, 2), NO_STREAM);
        await store.append(stream('unrelated'), events(1), NO_STREAM);
        await store.append(stream('res', 2), before.slice(2), NO_STREAM);
        const consume = (stopId: string) => runChild<ConsumeResult>(['consume', url, name, prefix('res'), from, stopId]);

        expect(await consume(before[2]!.id)).toEqual({ ids: idsOf(before), count: 3 });
        const after = events(2);
        await store.append(stream('res', 1), after, 1n);
        expect(await consume(after[1]!.id)).toEqual({ ids: idsOf(after), count: 5 });
        const last = await store.readLastEvent(stream('res', 1));
        expect((await store.readCheckpoint(name))?.position).toBe(last?.position);
      });
    });

    describe('corrupt events', () => {
      it('data failing its codec decodes to a CorruptEvent naming stream, revision and path, and reading goes on', async () => {
        const store = await open();
        const symbol = names().prefix('corrupt').slice(0, -1);
        const s = streams.hedgeCommands(symbol);
        const from = await startOf(store);
        await store.append(s, [hedgeRequested(symbol, 1), hedgeRequested(symbol, 2, '1.5'), hedgeRequested(symbol, 3)], NO_STREAM);

        const decoded = (await collect(store.readStream(s))).map(decodeEvent);
        expect(decoded.map(E.isRight)).toEqual([true, false, true]);
        expect(decoded[1]).toEqual(E.left(expect.objectContaining({ kind: 'CorruptEvent', stream: s, revision: 1n, path: 'data.quantity' })));

        const subscription = store.subscribe({ from, prefixes: [s] });
        const delivered: bigint[] = [];
        for await (const e of subscription) if (delivered.push(e.revision) === 3) break;
        expect(delivered).toEqual([0n, 1n, 2n]);
      });
    });
  });
}
