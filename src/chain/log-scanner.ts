/**
 * The orderbook's logs over a block range: eth_getLogs for its address and the three topic0s,
 * in sub-ranges that adapt to the provider, several in flight, yielded strictly in chain order.
 * Every log object is decoded with io-ts; a malformed one fails its call (retried, then fatal),
 * it is never dropped.
 *
 * The newest blocks (the last `lagHorizon` up to the range's end) are read one by one instead: a
 * node behind a load balancer that lags the one that reported the head answers a range past its
 * own head with the logs it has, often none, and no error. A block's header gives its hash and
 * logs bloom; a bloom that cannot hold one of our logs settles the block with no further call,
 * otherwise eth_getLogs by that block hash (EIP-234) asks for them, which a node without the
 * block refuses ("unknown block") instead of answering empty.
 */
import * as t from 'io-ts';
import * as E from 'fp-ts/lib/Either.js';
import { Hash32, SafeHexQuantity } from '../domain/codecs.ts';
import { hasOrderbookTopic, ORDERBOOK_TOPICS } from '../domain/orderbook-abi.ts';
import type { Logger } from '../log.ts';
import { LogBloomFilter, LogsBloom } from './log-bloom.ts';
import { decodeRpcLog, inChainOrder, toRecordedLog, type RecordedLog } from './rpc-log.ts';
import { fromCodec, isRangeTooLarge, isRetryable, lagsBehind, MalformedRpcResponse, numberedBlock, type ChainRpc, type Decoder } from './rpc.ts';

export interface BlockRange {
  readonly from: bigint;
  readonly to: bigint;
}

export interface LogChunk extends BlockRange {
  /** In chain order, each log once. */
  readonly logs: readonly RecordedLog[];
  /**
   * Set (and `logs` empty) when the block, read by hash, changed hash while it was read: the chain
   * reorganised during the scan, which the consumer stops at like at any other sign of a reorg.
   */
  readonly forked?: string;
  /** A block read by hash: its hash and its parent's, which the scan links to the blocks around it. */
  readonly block?: { readonly hash: string; readonly parentHash: string };
}

type Answer = LogChunk | { readonly pieces: readonly BlockRange[] };

/**
 * Blocks up to the range's end (the confirmed head) read one by one, by hash: ~8.5 minutes of
 * Base blocks. A node behind a balancer lags by seconds; every healthy one has older blocks.
 */
export const LAG_HORIZON = 256;

const BlockHeader = t.type({
  // Past 2^53 is no block's number (as in a log).
  number: SafeHexQuantity,
  hash: Hash32,
  parentHash: Hash32,
  logsBloom: LogsBloom,
});
type BlockHeader = t.TypeOf<typeof BlockHeader>;

const maybeHeader = fromCodec(t.union([BlockHeader, t.null]));

/** Block `n`'s header: that block's (another's hash would be asked for in its place), and there (the head was reported above it). */
const headerOf =
  (n: bigint): Decoder<BlockHeader> =>
  (u) =>
    E.chain((h: BlockHeader | null) => (h === null ? E.left(`eth_getBlockByNumber has no block ${n}, though it is below the confirmed head`) : E.right(h)))(numberedBlock(maybeHeader, n)(u));

/** Logs per eth_getLogs answer to aim for: a few MB of JSON, well under providers' caps and viem's 10 MiB body limit. */
const TARGET_LOGS = 2_000n;

const blocksIn = (r: BlockRange): bigint => r.to - r.from + 1n;
const hex = (n: bigint): string => `0x${n.toString(16)}`;
export const min = (a: bigint, b: bigint): bigint => (a < b ? a : b);
export const max = (a: bigint, b: bigint): bigint => (a > b ? a : b);

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

export interface ScannerOptions {
  readonly chainId: number;
  /** Lowercase, as decoded addresses are. */
  readonly orderbook: string;
  /** eth_getLogs calls in flight. */
  readonly concurrency: number;
  readonly maxBlockRange: number;
  /** The last blocks of a scan read one by one, by hash (default LAG_HORIZON; 0 reads every block by range). */
  readonly lagHorizon?: number;
  readonly log: Logger;
}

/** A range in the scan's queue (or one block read by hash), and its answer once asked for. */
interface Queued {
  readonly range: BlockRange;
  readonly byHash?: boolean;
  answer?: Promise<Answer>;
}

export class LogScanner {
  private readonly span: BlockSpan;
  private readonly bloom: LogBloomFilter;
  private readonly horizon: bigint;

  constructor(
    private readonly rpc: ChainRpc,
    private readonly options: ScannerOptions,
  ) {
    this.span = new BlockSpan(BigInt(options.maxBlockRange));
    this.bloom = new LogBloomFilter(options.orderbook as `0x${string}`, ORDERBOOK_TOPICS as readonly `0x${string}`[]);
    this.horizon = BigInt(options.lagHorizon ?? LAG_HORIZON);
  }

  /**
   * The logs of `range` in consecutive chunks, in order. Ranges are queued in chain order and
   * asked for from the front of the queue, never more than `concurrency` answers outstanding. A
   * range the provider refuses as too large is replaced, at its place in the queue, by pieces
   * of the span the answers so far suggest. The last `lagHorizon` blocks are queued one by one,
   * each read by hash. Those must be a chain ending at `headHash` (range.to's hash, when given):
   * each the parent of the next, as its header says. A header answered by a node on another fork
   * (one lagging behind a reorg) is another block of that number: taken for the block, its bloom or
   * its logs would stand for the canonical block's, whose logs would be lost for good. Such a
   * chunk comes `forked`, without logs.
   */
  async *scan(range: BlockRange, headHash?: string): AsyncGenerator<LogChunk> {
    const queue: Queued[] = [];
    let previous: { readonly n: bigint; readonly hash: string } | undefined;
    const byHashFrom = range.to - this.horizon + 1n;
    let next = range.from;
    for (;;) {
      while (next <= range.to && queue.length < this.options.concurrency) {
        const byHash = next >= byHashFrom;
        const to = byHash ? next : min(min(range.to, byHashFrom - 1n), next + this.span.blocks - 1n);
        queue.push({ range: { from: next, to }, ...(byHash && { byHash }) });
        next = to + 1n;
      }
      this.askAhead(queue);
      const head = queue.shift();
      if (head === undefined) return;
      const answer = await head.answer!;
      if ('logs' in answer) {
        const unlinked = answer.block === undefined ? undefined : this.unlinked(answer, answer.block, previous, range.to, headHash);
        if (unlinked !== undefined) {
          yield { from: answer.from, to: answer.to, logs: [], forked: unlinked };
          return;
        }
        if (answer.block !== undefined) previous = { n: answer.from, hash: answer.block.hash };
        yield answer;
      } else queue.unshift(...answer.pieces.map((piece) => ({ range: piece })));
    }
  }

  /** Why a block read by hash is not in the chain of the blocks after it, up to the head; undefined when it is. */
  private unlinked(chunk: BlockRange, block: NonNullable<LogChunk['block']>, previous: { readonly n: bigint; readonly hash: string } | undefined, to: bigint, headHash: string | undefined): string | undefined {
    if (previous !== undefined && previous.n === chunk.from - 1n && block.parentHash !== previous.hash) {
      return `eth_getBlockByNumber has block ${chunk.from}'s parent as ${block.parentHash}, not ${previous.hash} (block ${previous.n} as read)`;
    }
    if (chunk.from === to && headHash !== undefined && block.hash !== headHash) return `eth_getBlockByNumber has block ${to} as ${block.hash}, not ${headHash}`;
    return undefined;
  }

  /** Asks for the queue's first ranges not asked for yet, up to `concurrency` answers outstanding. */
  private askAhead(queue: Queued[]): void {
    let outstanding = queue.filter((q) => q.answer !== undefined).length;
    for (const queued of queue) {
      if (outstanding >= this.options.concurrency) return;
      if (queued.answer !== undefined) continue;
      queued.answer = queued.byHash ? this.fetchBlock(queued.range.from) : this.fetch(queued.range);
      queued.answer.catch(() => undefined); // awaited in turn; a consumer that stops early abandons it
      outstanding++;
    }
  }

  /** One range's logs, or the pieces to ask for instead when the provider refuses it as too large. */
  private async fetch(range: BlockRange): Promise<Answer> {
    try {
      const logs = await this.getLogs(range);
      this.span.answered(range, logs.length);
      return { ...range, logs };
    } catch (error) {
      if (!isRangeTooLarge(error) || range.from === range.to) throw error;
      this.span.refused(range);
      this.options.log.info({ from: range.from, to: range.to, span: this.span.blocks }, 'provider refused the block range; splitting it');
      return { pieces: split(range, this.span.blocks) };
    }
  }

  /**
   * One block's logs, by hash: its header, then (unless its bloom rules our logs out) eth_getLogs
   * for that hash. A node that does not have the block has the header read again: the same hash
   * means the node lags, and it is asked again (at the deadline ingestion stops there rather than
   * take the block for empty); another hash means the chain reorganised: the chunk says so.
   */
  private fetchBlock(n: bigint): Promise<LogChunk> {
    let asked: string | undefined;
    return this.rpc.consistent(`block ${n}`, async () => {
      const header = await this.rpc.request('eth_getBlockByNumber', [hex(n), false], headerOf(n), `block ${n}`);
      if (asked !== undefined && header.hash !== asked) return { from: n, to: n, logs: [], forked: `eth_getBlockByNumber has block ${n} as ${header.hash}, not ${asked}` };
      asked = header.hash;
      const logs = this.bloom.mayHold(header.logsBloom) ? await this.getLogsByHash(header) : [];
      return { from: n, to: n, logs, block: { hash: header.hash, parentHash: header.parentHash } };
    });
  }

  private async getLogsByHash({ number, hash }: BlockHeader): Promise<readonly RecordedLog[]> {
    const filter = { address: this.options.orderbook, topics: [ORDERBOOK_TOPICS], blockHash: hash };
    // A node without the block: not retried here, but with the header read again (fetchBlock). One block cannot be split: a refusal of it is retried.
    const retryable = (e: unknown) => !lagsBehind(e) && (isRetryable(e) || isRangeTooLarge(e));
    try {
      return await this.rpc.request('eth_getLogs', [filter], (answer) => this.decode(answer, { from: number, to: number }, hash), `eth_getLogs ${number}..${number} by hash`, retryable);
    } catch (error) {
      if (!lagsBehind(error)) throw error;
      throw new MalformedRpcResponse(`eth_getLogs has no block ${number} by the hash eth_getBlockByNumber answered (${hash}): the node lags, or the block left the chain`);
    }
  }

  private getLogs(range: BlockRange): Promise<readonly RecordedLog[]> {
    const filter = { address: this.options.orderbook, topics: [ORDERBOOK_TOPICS], fromBlock: hex(range.from), toBlock: hex(range.to) };
    // A single block cannot be split: a refusal of it is retried like any other failure, up to the deadline.
    const retryable = range.from === range.to ? (e: unknown) => isRetryable(e) || isRangeTooLarge(e) : isRetryable;
    return this.rpc.request('eth_getLogs', [filter], (answer) => this.decode(answer, range), `eth_getLogs ${range.from}..${range.to}`, retryable);
  }

  /** Decodes and checks an answer: every log of the filter and range (and block hash, if asked by one), one hash per block; sorted, repeats dropped. */
  private decode(answer: unknown, range: BlockRange, blockHash?: string): E.Either<string, readonly RecordedLog[]> {
    // typeof says "object" for null too: a node answering null (no logs, it means) must read as such.
    if (!Array.isArray(answer)) return E.left(`expected an array of logs, got ${answer === null ? 'null' : typeof answer}`);
    const logs: RecordedLog[] = [];
    // One answer is one view of the chain: the same log (transaction, index) at two places is a node's answer mid-reorg.
    const places = new Map<string, string>();
    for (const [i, item] of answer.entries()) {
      const decoded = decodeRpcLog(item);
      if (E.isLeft(decoded)) return E.left(`log ${i}: ${decoded.left}`);
      const rpcLog = decoded.right;
      const outside = rpcLog.address !== this.options.orderbook || !hasOrderbookTopic(rpcLog.topics) || rpcLog.blockNumber < range.from || rpcLog.blockNumber > range.to;
      if (outside) return E.left(`log ${i} (${rpcLog.address}, block ${rpcLog.blockNumber}) is outside the filter`);
      if (blockHash !== undefined && rpcLog.blockHash !== blockHash) return E.left(`log ${i} is of block hash ${rpcLog.blockHash}, not the ${blockHash} asked for`);
      // The node answered while a reorg replaced this block: ask again; a stored log it removed is compensated once the block hashes show the reorg.
      if (rpcLog.removed === true) return E.left(`log ${i} (block ${rpcLog.blockNumber}, index ${rpcLog.logIndex}) is flagged removed: the answer is mid-reorg`);
      const place = `block ${rpcLog.blockNumber} (${rpcLog.blockHash})`;
      const key = `${rpcLog.transactionHash}:${rpcLog.logIndex}`;
      const seen = places.get(key);
      if (seen !== undefined && seen !== place) return E.left(`log ${i} (transaction ${rpcLog.transactionHash}, index ${rpcLog.logIndex}) is at ${place} and at ${seen}: the answer mixes two forks`);
      places.set(key, place);
      logs.push(toRecordedLog(this.options.chainId, rpcLog));
    }
    return inChainOrder(logs);
  }
}
