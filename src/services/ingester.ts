/**
 * The one ingestion path. Whatever delivers logs (a file, eth_getLogs backfill, a websocket),
 * they come here: sorted into chain order, token metadata recorded first, then appended
 * after the orderbook stream's last log at its exact revision with deterministic ids.
 * The stream itself is the checkpoint; a repeat or a racing ingester writes nothing twice.
 */
import { NO_STREAM, type EventStore, type ExpectedRevision } from '../eventstore/port.ts';
import { WrongExpectedVersion } from '../eventstore/errors.ts';
import { decodeEvent, encodeEvent, streams, type EventData } from '../domain/events.ts';
import { uuidV5 } from '../domain/ids.ts';
import { recordedLogId, type RecordedLog } from '../chain/rpc-log.ts';
import { compareLogMarks, isAfter, type LogMark } from '../domain/log-order.ts';

export type TokenMetadata = Pick<EventData<'TokenMetadataRecorded'>, 'symbol' | 'reason'>;

/** Reads ERC20 symbols (from the chain, or a file); never throws for one bad token: it answers symbol null and a reason. */
export interface TokenResolver {
  resolve(addresses: readonly string[]): Promise<ReadonlyMap<string, TokenMetadata>>;
}

export interface IngestReport {
  readonly appended: number;
  /** At or before the stream's last log: already ingested (or too late to apply in chain order). */
  readonly alreadyIngested: number;
  readonly tokensRecorded: number;
}

export interface IngesterOptions {
  readonly store: EventStore;
  readonly chainId: number;
  readonly orderbook: string;
  readonly tokens: TokenResolver;
  /** Token addresses a log mentions (from its decoded IO structs); [] for logs that cannot be decoded. */
  readonly tokensOf: (log: RecordedLog) => readonly string[];
  /** Events per append call; keeps each append well under EventStoreDB's 1 MiB limit. */
  readonly batchSize?: number;
}

const MAX_RACE_RETRIES = 5;

export const tokenEventId = (chainId: number, address: string): string => uuidV5(`token:${chainId}:${address.toLowerCase()}`);

interface StreamTip {
  readonly expected: ExpectedRevision;
  readonly mark: LogMark | null;
}

export class Ingester {
  readonly stream: string;
  private readonly tokenStream: string;
  private knownTokens: Set<string> | null = null;
  private tokenRevision: ExpectedRevision = NO_STREAM;

  constructor(private readonly options: IngesterOptions) {
    this.stream = streams.orderbook(options.chainId, options.orderbook);
    this.tokenStream = streams.tokens(options.chainId);
  }

  /** Where the stream ends: its revision and the chain position of its last log. */
  async tip(): Promise<StreamTip> {
    const last = await this.options.store.readLastEvent(this.stream);
    if (last === undefined) return { expected: NO_STREAM, mark: null };
    const decoded = decodeEvent(last);
    if (decoded._tag === 'Left') throw decoded.left;
    const data = decoded.right.data as Partial<RecordedLog>;
    const mark = data.blockNumber !== undefined && data.logIndex !== undefined ? { blockNumber: data.blockNumber, logIndex: data.logIndex } : null;
    return { expected: last.revision, mark };
  }

  /** Appends the logs that come after the stream's last log, in chain order. */
  async ingest(logs: readonly RecordedLog[]): Promise<IngestReport> {
    const ordered = dedupe([...logs].sort(compareLogMarks));
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.appendAfterTip(ordered);
      } catch (e) {
        // Another ingester appended first: re-read the tip and append only what is still new.
        if (!(e instanceof WrongExpectedVersion) || attempt >= MAX_RACE_RETRIES) throw e;
        this.knownTokens = null;
      }
    }
  }

  private async appendAfterTip(ordered: readonly RecordedLog[]): Promise<IngestReport> {
    const tip = await this.tip();
    const fresh = tip.mark === null ? ordered : ordered.filter((l) => isAfter(l, tip.mark!));
    const tokensRecorded = await this.recordTokens(fresh);
    const size = this.options.batchSize ?? 500;
    let expected = tip.expected;
    for (let i = 0; i < fresh.length; i += size) {
      const batch = fresh.slice(i, i + size).map((log) => encodeEvent(recordedLogId(log), { type: 'OrderbookLogRecorded', data: log }));
      expected = (await this.options.store.append(this.stream, batch, expected)).nextRevision;
    }
    return { appended: fresh.length, alreadyIngested: ordered.length - fresh.length, tokensRecorded };
  }

  /** Records metadata for every token the logs mention that the ledger has not seen, before the logs. */
  private async recordTokens(logs: readonly RecordedLog[]): Promise<number> {
    const known = await this.loadKnownTokens();
    const unseen = [...new Set(logs.flatMap((l) => this.options.tokensOf(l).map((a) => a.toLowerCase())))].filter((a) => !known.has(a)).sort();
    if (unseen.length === 0) return 0;
    const resolved = await this.options.tokens.resolve(unseen);
    const events = unseen.map((address) => {
      const meta = resolved.get(address) ?? { symbol: null, reason: 'resolver returned no answer' };
      return encodeEvent(tokenEventId(this.options.chainId, address), {
        type: 'TokenMetadataRecorded',
        data: { chainId: this.options.chainId, address: address as `0x${string}`, symbol: meta.symbol, reason: meta.reason },
      });
    });
    this.tokenRevision = (await this.options.store.append(this.tokenStream, events, this.tokenRevision)).nextRevision;
    unseen.forEach((a) => known.add(a));
    return unseen.length;
  }

  private async loadKnownTokens(): Promise<Set<string>> {
    if (this.knownTokens) return this.knownTokens;
    const known = new Set<string>();
    let revision: ExpectedRevision = NO_STREAM;
    const last = await this.options.store.readLastEvent(this.tokenStream);
    if (last !== undefined) {
      for await (const event of this.options.store.readStream(this.tokenStream)) {
        const decoded = decodeEvent(event);
        if (decoded._tag === 'Right' && decoded.right.type === 'TokenMetadataRecorded') known.add(decoded.right.data.address);
        revision = event.revision;
      }
    }
    this.tokenRevision = revision;
    this.knownTokens = known;
    return known;
  }
}

/** Drops repeats of the same log (same block, same index) within one delivery; input is sorted. */
const dedupe = (sorted: readonly RecordedLog[]): RecordedLog[] =>
  sorted.filter((log, i) => i === 0 || compareLogMarks(sorted[i - 1]!, log) !== 0);
