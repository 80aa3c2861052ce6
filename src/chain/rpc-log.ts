/** A log as `eth_getLogs` returns it (hex quantities), decoded at the boundary. */
import * as t from 'io-ts';
import * as E from 'fp-ts/lib/Either.js';
import { Address, Hash32, HexData, HexQuantity, describeErrors } from '../domain/codecs.ts';
import type { EventData } from '../domain/events.ts';
import { logEventId } from '../domain/ids.ts';

export const RpcLog = t.intersection([
  t.type({
    address: Address,
    topics: t.array(Hash32),
    data: HexData,
    blockNumber: HexQuantity,
    blockHash: Hash32,
    transactionHash: Hash32,
    transactionIndex: HexQuantity,
    logIndex: HexQuantity,
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
