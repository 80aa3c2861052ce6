/**
 * Deterministic event ids (RFC 9562 UUIDv5). The same log or decision always maps to the
 * same id, whichever path delivered it, so the store dedupes it.
 */
import { createHash } from 'node:crypto';

/** Our namespace: UUIDv5 of "hedge-ledger" in the URL namespace, fixed forever. */
export const LEDGER_NAMESPACE = '0cba3e59-f5c6-5808-b4bb-4f52173ab998';

function parseUuid(uuid: string): Buffer {
  const clean = uuid.replace(/-/g, '');
  if (!/^[0-9a-f]{32}$/i.test(clean)) throw new TypeError(`not a UUID: ${uuid}`);
  return Buffer.from(clean, 'hex');
}

const namespaces = new Map<string, Buffer>();

/** node:crypto's SHA-1 is several times faster than a JS one: ingestion derives an id per log. */
export function uuidV5(name: string, namespace: string = LEDGER_NAMESPACE): string {
  let ns = namespaces.get(namespace);
  if (!ns) namespaces.set(namespace, (ns = parseUuid(namespace)));
  const bytes = createHash('sha1').update(ns).update(name, 'utf8').digest();
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const h = bytes.toString('hex', 0, 16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Id of an onchain log: `chainId:txHash:logIndex` (tx hash lowercase, log index decimal). */
export const logEventId = (chainId: number, txHash: string, logIndex: number): string =>
  uuidV5(`${chainId}:${txHash.toLowerCase()}:${logIndex}`);

/** Id of the accumulator's n-th decision (1-based) for a symbol. */
export const hedgeDecisionId = (symbol: string, n: number): string => uuidV5(`hedgecmd:${symbol}:${n}`);

/** Id of a compensating event for a log orphaned by a reorg (its first removal: the one stored ledgers hold). */
export const logRemovedEventId = (chainId: number, txHash: string, logIndex: number, blockHash: string): string =>
  uuidV5(`removed:${chainId}:${txHash.toLowerCase()}:${logIndex}:${blockHash.toLowerCase()}`);

/**
 * Id of a log recorded again after the removal `removalId`: its transaction was mined again. Each
 * generation derives from the event before it, so no id repeats however often the chain flips
 * between forks, and every ingester that sees the same removal records the log under the same id.
 */
export const logRecordedAgainEventId = (removalId: string): string => uuidV5(`recorded-again:${removalId}`);

/**
 * Id of the removal of a log recorded again (`recordedId`, a logRecordedAgainEventId). Not by block
 * hash, as a first removal is: a chain flipping back to a fork would remove it at that block again.
 */
export const logRemovedAgainEventId = (recordedId: string): string => uuidV5(`removed:${recordedId}`);

/** Id of a token's metadata event: one per token and chain, whoever resolves it. */
export const tokenEventId = (chainId: number, address: string): string => uuidV5(`token:${chainId}:${address.toLowerCase()}`);

/** Id of the event at `revision` (0-based) of a hedge command's order stream. */
export const orderEventId = (commandId: string, revision: bigint): string => uuidV5(`hedgeorder:${commandId}:${revision}`);

/** Id of the event at `revision` (0-based) of a symbol's control stream (HedgingResumed). */
export const controlEventId = (symbol: string, revision: bigint): string => uuidV5(`hedgectl:${symbol}:${revision}`);
