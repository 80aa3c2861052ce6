/** A log as `eth_getLogs` returns it (hex quantities), decoded at the boundary. */
import * as t from 'io-ts';
import * as E from 'fp-ts/lib/Either.js';
import { Address, Hash32, HexData, SafeHexQuantity, describeErrors } from '../domain/codecs.ts';
import type { EventData } from '../domain/events.ts';
import { logEventId } from '../domain/ids.ts';
import { compareLogMarks } from '../domain/log-order.ts';

const RpcLog = t.intersection([
  t.type({
    address: Address,
    topics: t.array(Hash32),
    data: HexData,
    // Exact as numbers: a log index becomes part of the log's event id.
    blockNumber: SafeHexQuantity,
    blockHash: Hash32,
    transactionHash: Hash32,
    transactionIndex: SafeHexQuantity,
    logIndex: SafeHexQuantity,
  }),
  t.partial({ removed: t.boolean }),
]);
export type RpcLog = t.TypeOf<typeof RpcLog>;

/** Decodes one log object, or says which field is wrong and why. */
export function decodeRpcLog(u: unknown): E.Either<string, RpcLog> {
  return E.mapLeft((errors: t.Errors) => {
    const { path, reason } = describeErrors(errors);
    return `${path || 'log'}: ${reason}`;
  })(RpcLog.decode(u));
}

export type RecordedLog = EventData<'OrderbookLogRecorded'>;

export const toRecordedLog = (chainId: number, log: RpcLog): RecordedLog => ({
  chainId,
  address: log.address,
  blockNumber: log.blockNumber,
  blockHash: log.blockHash,
  transactionHash: log.transactionHash,
  transactionIndex: log.transactionIndex,
  logIndex: log.logIndex,
  topics: log.topics,
  data: log.data,
});

export const recordedLogId = (log: RecordedLog): string => logEventId(log.chainId, log.transactionHash, Number(log.logIndex));

/** What a log says, wherever it was mined (a reorg may move a transaction to another block). */
export const sameContent = (a: RecordedLog, b: RecordedLog): boolean => a.address === b.address && a.data === b.data && a.topics.join() === b.topics.join();

/** Where logs first contradict each other, in chain order: the block of the log that contradicts one before it, and why. */
export interface LogContradiction {
  readonly blockNumber: bigint;
  readonly reason: string;
}

/**
 * Logs sorted into chain order, repeats of a log dropped, as far as they agree: up to the first log
 * (in chain order) that contradicts one before it, as logs from two forks do (one block with two
 * hashes, two logs at one place, or one log, transaction and index, with two contents). `kept` then
 * holds the logs before that log. The same log at a later place (its transaction mined again
 * after a reorg) is a repeat: the fill is the same, and the first place is kept, as it is when
 * the log is stored already.
 */
export function sortLogs(logs: readonly RecordedLog[]): { readonly kept: RecordedLog[]; readonly contradiction: LogContradiction | null } {
  const kept: RecordedLog[] = [];
  const byTransaction = new Map<string, RecordedLog>();
  const stop = (log: RecordedLog, reason: string) => ({ kept, contradiction: { blockNumber: log.blockNumber, reason } });
  for (const log of [...logs].sort(compareLogMarks)) {
    const previous = kept[kept.length - 1];
    if (previous !== undefined && previous.blockNumber === log.blockNumber && previous.blockHash !== log.blockHash) {
      return stop(log, `block ${log.blockNumber} has two hashes (${previous.blockHash}, ${log.blockHash})`);
    }
    const key = `${log.transactionHash}:${log.logIndex}`;
    const seen = byTransaction.get(key);
    if (seen !== undefined) {
      if (sameContent(seen, log)) continue; // the same log twice
      return stop(log, `log ${log.logIndex} of transaction ${log.transactionHash} appears twice, differently (blocks ${seen.blockNumber} and ${log.blockNumber})`);
    }
    if (previous !== undefined && compareLogMarks(previous, log) === 0) {
      return stop(log, `two different logs at block ${log.blockNumber} index ${log.logIndex} (transactions ${previous.transactionHash} and ${log.transactionHash})`);
    }
    byTransaction.set(key, log);
    kept.push(log);
  }
  return { kept, contradiction: null };
}

/** Logs sorted into chain order, repeats of a log dropped. Left when they contradict each other (see sortLogs). */
export function inChainOrder(logs: readonly RecordedLog[]): E.Either<string, RecordedLog[]> {
  const { kept, contradiction } = sortLogs(logs);
  return contradiction === null ? E.right(kept) : E.left(contradiction.reason);
}
