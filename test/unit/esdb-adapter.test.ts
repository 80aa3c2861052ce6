/**
 * The EventStoreDB adapter over a stand-in client: what the adapter makes of the client's answers,
 * where no server is needed to tell. Events are built as the server sends them (protobuf) and
 * converted by the client's own code, so the test sees what the real client hands over.
 */
import { Readable } from 'node:stream';
import { collect } from '../support/store-fixtures.ts';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ResolvedEvent } from '@eventstore/db-client';
import { convertGrpcEvent } from '@eventstore/db-client/dist/utils/convertGrpcEvent.js';
import { UUID, StreamIdentifier } from '@eventstore/db-client/generated/shared_pb.js';
import { ReadResp } from '@eventstore/db-client/generated/streams_pb.js';

const client = vi.hoisted(() => ({
  readStream: (() => undefined) as (...args: unknown[]) => unknown,
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
function serverEvent(stream: string, revision: number, commit: string, prepare: string): ResolvedEvent {
  const recorded = new ReadResp.ReadEvent.RecordedEvent();
  recorded.setId(new UUID().setString('6f1c1f0e-6c0b-4f43-9f57-3a1b2c3d4e5f'));
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

afterEach(() => {
  client.readStream = () => undefined;
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
