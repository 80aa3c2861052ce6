/**
 * The orderbook's logs over a block range: eth_getLogs for its address and the three topic0s,
 * in sub-ranges that adapt to the provider, several in flight, yielded strictly in chain order.
 * Every log object is decoded with io-ts; a malformed one fails its call (retried, then fatal),
 * it is never dropped.
 */
import * as E from 'fp-ts/lib/Either.js';
import { AFTER_CLEAR_TOPIC, CLEAR_V2_TOPIC, TAKE_ORDER_V2_TOPIC } from '../domain/orderbook-abi.ts';
import { compareLogMarks } from '../domain/log-order.ts';
import type { Logger } from '../log.ts';
import { decodeRpcLog, recordedLogId, toRecordedLog, type RecordedLog } from './rpc-log.ts';
import { isRangeTooLarge, isRetryable, type ChainRpc } from './rpc.ts';

export interface BlockRange {
  readonly from: bigint;
  readonly to: bigint;
}

export interface LogChunk extends BlockRange {
  /** In chain order, each log once. */
  readonly logs: readonly RecordedLog[];
}

type Answer = LogChunk | { readonly pieces: readonly BlockRange[] };

const TOPICS: readonly string[] = [CLEAR_V2_TOPIC, AFTER_CLEAR_TOPIC, TAKE_ORDER_V2_TOPIC];
/** Logs per eth_getLogs answer to aim for: a few MB of JSON, well under providers' caps and viem's 10 MiB body limit. */
const TARGET_LOGS = 2_000n;

const blocksIn = (r: BlockRange): bigint => r.to - r.from + 1n;
const hex = (n: bigint): string => `0x${n.toString(16)}`;
const min = (a: bigint, b: bigint): bigint => (a < b ? a : b);
const max = (a: bigint, b: bigint): bigint => (a > b ? a : b);

/**
 * Blocks per eth_getLogs call. It starts at one block (log density is unknown: a backfill of
 * busy blocks must not begin with an answer too large to read) and follows the density the
 * answers show: the span that would hold TARGET_LOGS, at most doubling per answer, never above
 * the configured maximum; a refused range halves it.
 */
class BlockSpan {
  private current = 1n;

  constructor(private readonly limit: bigint) {}

  get blocks(): bigint {
    return this.current;
  }

  refused(range: BlockRange): void {
    this.current = max(1n, min(this.current, blocksIn(range) / 2n));
  }

  answered(range: BlockRange, logs: number): void {
    const ceiling = min(this.limit, this.current * 2n);
    const fit = logs === 0 ? ceiling : (blocksIn(range) * TARGET_LOGS) / BigInt(logs);
    this.current = max(1n, min(fit, ceiling));
  }
}

/** Consecutive pieces of at most `blocks` blocks covering `range`. */
function split(range: BlockRange, blocks: bigint): BlockRange[] {
  const pieces: BlockRange[] = [];
  for (let from = range.from; from <= range.to; from += blocks) pieces.push({ from, to: min(range.to, from + blocks - 1n) });
  return pieces;
}

/** At most `limit` calls run at once; the others wait their turn, first come first served. */
class Slots {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(call: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await new Promise<void>((turn) => this.waiting.push(turn));
    else this.running++;
    try {
      return await call();
    } finally {
      const next = this.waiting.shift();
      if (next) next(); // the slot passes to the next caller
      else this.running--;
    }
  }
}

export interface ScannerOptions {
  readonly chainId: number;
  /** Lowercase, as decoded addresses are. */
  readonly orderbook: string;
  /** eth_getLogs calls in flight. */
  readonly concurrency: number;
  readonly maxBlockRange: number;
  readonly log: Logger;
}

export class LogScanner {
  private readonly span: BlockSpan;
  private readonly calls: Slots;

  constructor(
    private readonly rpc: ChainRpc,
    private readonly options: ScannerOptions,
  ) {
    this.span = new BlockSpan(BigInt(options.maxBlockRange));
    this.calls = new Slots(options.concurrency);
  }

  /**
   * The logs of `range` in consecutive chunks, fetched up to `concurrency` chunks ahead of the
   * consumer. A range the provider refuses as too large is replaced, in place, by pieces of the
   * span the answers so far suggest, so every chunk is yielded as soon as it and those before it are in.
   */
  async *scan(range: BlockRange): AsyncGenerator<LogChunk> {
    const ahead: Promise<Answer>[] = [];
    const fetchAhead = (piece: BlockRange): Promise<Answer> => {
      const answer = this.fetch(piece);
      answer.catch(() => undefined); // awaited in turn below; a consumer that stops early abandons it
      return answer;
    };
    let next = range.from;
    while (next <= range.to || ahead.length > 0) {
      while (next <= range.to && ahead.length < this.options.concurrency) {
        const to = min(range.to, next + this.span.blocks - 1n);
        ahead.push(fetchAhead({ from: next, to }));
        next = to + 1n;
      }
      const answer = await ahead.shift()!;
      if ('logs' in answer) yield answer;
      else ahead.unshift(...answer.pieces.map(fetchAhead)); // asked in order, so the first piece gets the first free call
    }
  }

  /** One range's logs, or the pieces to ask for instead when the provider refuses it as too large. */
  private async fetch(range: BlockRange): Promise<Answer> {
    try {
      const logs = await this.calls.run(() => this.getLogs(range));
      this.span.answered(range, logs.length);
      return { ...range, logs };
    } catch (error) {
      if (!isRangeTooLarge(error) || range.from === range.to) throw error;
      this.span.refused(range);
      this.options.log.info({ from: range.from, to: range.to, span: this.span.blocks }, 'provider refused the block range; splitting it');
      return { pieces: split(range, this.span.blocks) };
    }
  }

  private getLogs(range: BlockRange): Promise<readonly RecordedLog[]> {
    const filter = { address: this.options.orderbook, topics: [TOPICS], fromBlock: hex(range.from), toBlock: hex(range.to) };
    // A single block cannot be split: a refusal of it is retried like any other failure, up to the deadline.
    const retryable = range.from === range.to ? (e: unknown) => isRetryable(e) || isRangeTooLarge(e) : isRetryable;
    return this.rpc.request('eth_getLogs', [filter], (answer) => this.decode(answer, range), `eth_getLogs ${range.from}..${range.to}`, retryable);
  }

  /** Decodes and checks an answer: every log of the filter and range, one hash per block; sorted, repeats dropped. */
  private decode(answer: unknown, range: BlockRange): E.Either<string, readonly RecordedLog[]> {
    if (!Array.isArray(answer)) return E.left(`expected an array of logs, got ${typeof answer}`);
    const logs: RecordedLog[] = [];
    for (const [i, item] of answer.entries()) {
      const decoded = decodeRpcLog(item);
      if (E.isLeft(decoded)) return E.left(`log ${i}: ${decoded.left}`);
      const rpcLog = decoded.right;
      const outside = rpcLog.address !== this.options.orderbook || !TOPICS.includes(rpcLog.topics[0] ?? '') || rpcLog.blockNumber < range.from || rpcLog.blockNumber > range.to;
      if (outside) return E.left(`log ${i} (${rpcLog.address}, block ${rpcLog.blockNumber}) is outside the filter`);
      // The node answered while a reorg replaced this block: ask again; a stored log it removed is compensated once the block hashes show the reorg.
      if (rpcLog.removed === true) return E.left(`log ${i} (block ${rpcLog.blockNumber}, index ${rpcLog.logIndex}) is flagged removed: the answer is mid-reorg`);
      logs.push(toRecordedLog(this.options.chainId, rpcLog));
    }
    return inChainOrder(logs);
  }
}

function inChainOrder(logs: RecordedLog[]): E.Either<string, readonly RecordedLog[]> {
  logs.sort(compareLogMarks);
  const kept: RecordedLog[] = [];
  for (const log of logs) {
    const previous = kept[kept.length - 1];
    if (previous !== undefined && previous.blockNumber === log.blockNumber && previous.blockHash !== log.blockHash) {
      return E.left(`block ${log.blockNumber} answered with two hashes (${previous.blockHash}, ${log.blockHash})`);
    }
    if (previous !== undefined && compareLogMarks(previous, log) === 0) {
      if (recordedLogId(previous) !== recordedLogId(log)) return E.left(`two different logs at block ${log.blockNumber} index ${log.logIndex}`);
      continue; // the same log delivered twice
    }
    kept.push(log);
  }
  return E.right(kept);
}
