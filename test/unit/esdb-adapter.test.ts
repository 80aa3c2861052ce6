/**
 * The EventStoreDB adapter over a stand-in client: what the adapter makes of the client's answers,
 * where no server is needed to tell. Events are built as the server sends them (protobuf) and
 * converted by the client's own code, so the test sees what the real client hands over.
 */
import { Readable } from 'node:stream';
import { collect } from '../support/store-fixtures.ts';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BACKWARDS, convertToCommandError, END, WrongExpectedVersionError, type ResolvedEvent } from '@eventstore/db-client';
import { convertGrpcEvent } from '@eventstore/db-client/dist/utils/convertGrpcEvent.js';
import { UUID, StreamIdentifier } from '@eventstore/db-client/generated/shared_pb.js';
import { ReadResp } from '@eventstore/db-client/generated/streams_pb.js';
import { NO_STREAM, type Position } from '../../src/eventstore/port.ts';

const client = vi.hoisted(() => ({
  readStream: (() => undefined) as (...args: unknown[]) => unknown,
  readAll: (() => undefined) as (...args: unknown[]) => unknown,
  appendToStream: (() => Promise.resolve(undefined)) as (...args: unknown[]) => Promise<unknown>,
  subscribeToAll: (() => undefined) as (...args: unknown[]) => unknown,
  dispose: () => Promise.resolve(),
}));

vi.mock('@eventstore/db-client', async (importOriginal) => {
  const actual = await importOriginal<typeof import('@eventstore/db-client')>();
  return { ...actual, EventStoreDBClient: { connectionString: () => client } };
});

const { EsdbEventStore } = await import('../../src/eventstore/esdb.ts');

/** Position.FromInt64(-1, -1) on the server: what it sends when an event has no log position. */
const NO_POSITION = '18446744073709551615';

/** A stream-read event as the server sends it, converted by the client. */
function serverEvent(stream: string, revision: number, commit: string, prepare: string, stored: { id?: string; metadata?: Uint8Array } = {}): ResolvedEvent {
  const recorded = new ReadResp.ReadEvent.RecordedEvent();
  recorded.setId(new UUID().setString(stored.id ?? '6f1c1f0e-6c0b-4f43-9f57-3a1b2c3d4e5f'));
  if (stored.metadata) recorded.setCustomMetadata(stored.metadata);
  recorded.setStreamIdentifier(new StreamIdentifier().setStreamName(new TextEncoder().encode(stream)));
  recorded.setStreamRevision(String(revision));
  recorded.setCommitPosition(commit);
  recorded.setPreparePosition(prepare);
  recorded.getMetadataMap().set('type', 'Tested').set('content-type', 'application/json').set('created', '0');
  recorded.setData(new TextEncoder().encode('{"n":1}'));
  return convertGrpcEvent(new ReadResp.ReadEvent().setEvent(recorded));
}

function streamingRead(events: ResolvedEvent[]): Readable & { cancel(): Promise<void> } {
  return Object.assign(Readable.from(events), { cancel: () => Promise.resolve() });
}

/** A call that fails as the client reports a gRPC status: converted by the client's own code. */
function failing(code: number, details: string): Readable & { cancel(): Promise<void>; unsubscribe(): Promise<void> } {
  const status = Object.assign(new Error(`${code} ${details}`), { code, details });
  const read = new Readable({ objectMode: true, read() {} });
  setImmediate(() => read.destroy(convertToCommandError(status)));
  return Object.assign(read, { cancel: () => Promise.resolve(), unsubscribe: () => Promise.resolve() });
}

const INVALID_ARGUMENT = 3;
const UNAVAILABLE = 14;
/** What the server answers (RpcExceptions.InvalidPositionException) for a read of $all from a position that is no record of its log. */
const INVALID_POSITION = 'Trying to read from an invalid position.';
const somewhere = '00000000000000001234/00000000000000001230' as Position;

afterEach(() => {
  client.appendToStream = () => Promise.resolve(undefined);
  client.readStream = () => undefined;
  client.readAll = () => undefined;
  client.subscribeToAll = () => undefined;
});

describe('EventStoreDB adapter, stream reads', () => {
  it('hands over the log position a stream read carries (server 22.6 and later)', async () => {
    client.readStream = () => streamingRead([serverEvent('s-1', 0, '1234', '1230')]);
    const store = new EsdbEventStore('esdb://localhost:2113?tls=false');
    const [event] = await collect(store.readStream('s-1'));
    expect(event).toMatchObject({ stream: 's-1', revision: 0n, position: '00000000000000001234/00000000000000001230', data: { n: 1 } });
    await store.close();
  });

  it('refuses a stream read without log positions (servers before 22.6 send Position.End) instead of handing out the end of the log', async () => {
    client.readStream = () => streamingRead([serverEvent('s-1', 0, NO_POSITION, NO_POSITION)]);
    const store = new EsdbEventStore('esdb://localhost:2113?tls=false');
    await expect(collect(store.readStream('s-1'))).rejects.toMatchObject({ kind: 'StoreConfigError', message: expect.stringContaining('22.6') });
    await expect(store.readLastEvent('s-1')).rejects.toMatchObject({ kind: 'StoreConfigError' });
    await store.close();
  });
});

describe('EventStoreDB adapter, errors of $all reads', () => {
  it('a position the server refuses (INVALID_ARGUMENT) is a StoreConfigError for readAll, not StoreUnavailable to retry forever', async () => {
    client.readAll = () => failing(INVALID_ARGUMENT, INVALID_POSITION);
    const store = new EsdbEventStore('esdb://localhost:2113?tls=false');
    await expect(collect(store.readAll({ from: somewhere }))).rejects.toMatchObject({ kind: 'StoreConfigError', message: expect.stringContaining('invalid position') });
    await store.close();
  });

  it('a subscription from a position the server refuses ends with a StoreConfigError instead of resubscribing forever', async () => {
    let calls = 0;
    client.subscribeToAll = () => (calls++, failing(INVALID_ARGUMENT, INVALID_POSITION));
    const store = new EsdbEventStore('esdb://localhost:2113?tls=false');
    const retries: number[] = [];
    const subscription = store.subscribe({
      from: somewhere,
      onResubscribe: (_reason, delayMs) => {
        retries.push(delayMs);
        void subscription.close();
      },
    });
    await expect(subscription[Symbol.asyncIterator]().next()).rejects.toMatchObject({ kind: 'StoreConfigError' });
    expect({ calls, retries }).toEqual({ calls: 1, retries: [] });
    await store.close();
  });

  it('an unavailable server is still StoreUnavailable, and a subscription resubscribes', async () => {
    client.readAll = () => failing(UNAVAILABLE, 'No connection established');
    let calls = 0;
    client.subscribeToAll = () => (calls++, failing(UNAVAILABLE, 'No connection established'));
    const store = new EsdbEventStore('esdb://localhost:2113?tls=false');
    await expect(collect(store.readAll())).rejects.toMatchObject({ kind: 'StoreUnavailable' });
    const subscription = store.subscribe({ from: somewhere, onResubscribe: () => void subscription.close() });
    expect(await subscription[Symbol.asyncIterator]().next()).toMatchObject({ done: true });
    expect(calls).toBe(1);
    await store.close();
  });
});

describe('EventStoreDB adapter, resubscribing', () => {
  /** Events, then a failure with `code`, as one subscription call. */
  function session(events: ResolvedEvent[], code: number): Readable & { unsubscribe(): Promise<void> } {
    const read = new Readable({ objectMode: true, read() {} });
    events.forEach((e) => read.push(e));
    const status = Object.assign(new Error(`${code} dropped`), { code, details: 'dropped' });
    setImmediate(() => read.destroy(convertToCommandError(status)));
    return Object.assign(read, { unsubscribe: () => Promise.resolve() });
  }

  it('resubscribes after a drop from the last event it delivered, with the same filter, delivering nothing twice', async () => {
    const [a, b, other, c] = [
      serverEvent('sub-1', 0, '100', '100'),
      serverEvent('sub-1', 1, '200', '200'),
      serverEvent('$stats-1', 0, '250', '250'),
      serverEvent('sub-2', 0, '300', '300'),
    ];
    const calls: { fromPosition: unknown; filter: unknown }[] = [];
    const sessions = [() => session([a!, b!], UNAVAILABLE), () => session([b!, other!, c!], UNAVAILABLE)];
    client.subscribeToAll = (options) => {
      calls.push(options as (typeof calls)[number]);
      return sessions[calls.length - 1]?.() ?? session([], UNAVAILABLE);
    };
    const store = new EsdbEventStore('esdb://localhost:2113?tls=false');
    const retries: string[] = [];
    const subscription = store.subscribe({ from: 'start', prefixes: ['sub-'], onResubscribe: (reason) => void retries.push(reason.kind) });
    const delivered: string[] = [];
    for await (const e of subscription) if (delivered.push(e.position) === 3) break;
    expect(delivered).toEqual(['100', '200', '300'].map((n) => `${n.padStart(20, '0')}/${n.padStart(20, '0')}`));
    expect(retries).toEqual(['StoreUnavailable']);
    expect(calls.map((c) => c.fromPosition)).toEqual(['start', { commit: 200n, prepare: 200n }]);
    expect(calls.map((c) => (c.filter as { prefixes?: string[] }).prefixes)).toEqual([['sub-'], ['sub-']]);
    await store.close();
  });
});

describe('EventStoreDB adapter, appends', () => {
  const e = { id: '6f1c1f0e-6c0b-4f43-9f57-3a1b2c3d4e5f', type: 'Tested', data: {} };

  it('maps the client\'s WrongExpectedVersionError to ours, with our expected revision and the actual one', async () => {
    client.readStream = () => streamingRead([serverEvent('s-1', 4, '500', '500')]);
    client.appendToStream = () =>
      Promise.reject(new WrongExpectedVersionError(undefined, { streamName: 's-1', current: 4n, expected: 2n }));
    const store = new EsdbEventStore('esdb://localhost:2113?tls=false');
    await expect(store.append('s-1', [e], 2n)).rejects.toMatchObject({ kind: 'WrongExpectedVersion', stream: 's-1', expected: 2n, actual: 4n });
    client.appendToStream = () =>
      Promise.reject(new WrongExpectedVersionError(undefined, { streamName: 's-1', current: 'no_stream', expected: 0n }));
    await expect(store.append('s-1', [e], 0n)).rejects.toMatchObject({ kind: 'WrongExpectedVersion', expected: 0n, actual: 'no_stream' });
    await store.close();
  });

  /**
   * One stream as the server keeps it: an append at the end is written; a batch whose ids are already
   * there at the expected revision is acknowledged exactly like a write (the server checks ids only);
   * anything else is a conflict. Acknowledgements travel back after other work, as over a network.
   */
  function serverStream(name: string): { id: string; metadata?: Uint8Array }[] {
    const stored: { id: string; metadata?: Uint8Array }[] = [];
    client.appendToStream = async (_stream, events, options) => {
      const batch = events as { id: string; metadata?: Uint8Array }[];
      const { expectedRevision } = options as { expectedRevision: bigint | 'no_stream' };
      const from = expectedRevision === 'no_stream' ? 0 : Number(expectedRevision) + 1;
      const repeat = batch.every((event, i) => stored[from + i]?.id === event.id);
      if (from === stored.length) stored.push(...batch);
      else if (!repeat) throw new WrongExpectedVersionError(undefined, { streamName: name, current: BigInt(stored.length - 1), expected: BigInt(from - 1) });
      await new Promise(setImmediate);
      const last = from + batch.length - 1;
      return { success: true, nextExpectedRevision: BigInt(last), position: { commit: BigInt(100 * (last + 1)), prepare: BigInt(100 * (last + 1)) } };
    };
    client.readStream = (_stream, options) => {
      const { fromRevision, maxCount, direction } = options as { fromRevision: bigint | typeof END; maxCount: number; direction?: typeof BACKWARDS };
      const at = fromRevision === END ? stored.length - 1 : Number(fromRevision);
      const all = [...stored.keys()];
      const revisions = direction === BACKWARDS ? all.filter((r) => r <= at).reverse() : all.filter((r) => r >= at);
      return streamingRead(revisions.slice(0, maxCount).map((r) => serverEvent(name, r, String(100 * (r + 1)), String(100 * (r + 1)), stored[r])));
    };
    return stored;
  }

  const other = { ...e, id: '0b7d4c2a-4b8e-4f1e-9a57-3a1b2c3d4e60' };

  it('reports a repeat acknowledged like a write as nothing written, and a fresh write as written', async () => {
    serverStream('s-1');
    const store = new EsdbEventStore('esdb://localhost:2113?tls=false');
    expect(await store.append('s-1', [e], NO_STREAM)).toEqual({ nextRevision: 0n, written: true });
    expect(await store.append('s-1', [e], NO_STREAM)).toEqual({ nextRevision: 0n, written: false });
    expect(await store.append('s-1', [other], 0n)).toEqual({ nextRevision: 1n, written: true });
    await store.close();
  });

  it('two connections appending one batch at once: the server acknowledges both, and exactly one reports it wrote', async () => {
    serverStream('s-1');
    const [one, two] = [new EsdbEventStore('esdb://localhost:2113?tls=false'), new EsdbEventStore('esdb://localhost:2113?tls=false')];
    const results = await Promise.all([one.append('s-1', [e, other], NO_STREAM), two.append('s-1', [e, other], NO_STREAM)]);
    expect(results.map((r) => r.nextRevision)).toEqual([1n, 1n]);
    expect(results.map((r) => r.written).sort()).toEqual([false, true]);
    await Promise.all([one.close(), two.close()]);
  });

  it('hands back the metadata the caller gave, not the append id stored beside it', async () => {
    const stored = serverStream('s-1');
    const store = new EsdbEventStore('esdb://localhost:2113?tls=false');
    await store.append('s-1', [{ ...e, metadata: 0 }, { ...other, metadata: { $correlationId: 'x' } }], NO_STREAM);
    expect((await collect(store.readStream('s-1', { fromRevision: 0n, maxCount: 2 }))).map((r) => r.metadata)).toEqual([0, { $correlationId: 'x' }]);
    expect(JSON.parse(new TextDecoder().decode(stored[0]!.metadata))).toEqual({ hedgeLedgerAppendId: expect.any(String), metadata: 0 });
    await store.close();
  });
});
