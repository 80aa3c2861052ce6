/**
 * Follows the chain into the orderbook stream one step at a time: check that the chain still
 * has the newest block the ledger relies on (or find the highest one it still has), then scan
 * from there to the confirmed head. Backfill and live are the same step; only the distance to
 * the head differs.
 *
 * A forward step appends the logs it has not stored; it never removes. A step after a reorg
 * rescans from the highest block the chain still has to the confirmed head in one piece, so a
 * transaction re-mined into another block is found before anything is removed.
 *
 * A step's logs come from several eth_getLogs calls. Each answer is used only if, once it has
 * arrived, the chain still has the step's head and the answer's newest block: otherwise a reorg
 * happened during the step, which stops there and leaves it to the next step to find.
 */
import type { Logger } from '../log.ts';
import { ReorgTooDeep, type Ingester, type ReconcileReport } from '../services/ingester.ts';
import { BlockWindow } from './block-window.ts';
import { max, min, type BlockRange, type LogChunk, type LogScanner } from './log-scanner.ts';
import type { BlockHash, EventPlace } from './recent-logs.ts';
import type { RecordedLog } from './rpc-log.ts';
import { MalformedRpcResponse, type BlockRef, type ChainRpc } from './rpc.ts';

/** Blocks behind the latest, or the node's `safe` / `finalized` head. */
export type Confirmations = number | 'safe' | 'finalized';

export interface StepReport extends BlockRange, ReconcileReport {
  /** The step rescanned blocks a reorg replaced. */
  readonly reorg: boolean;
}

/**
 * Why a step had nothing to ingest though the ledger is not at a confirmed head: the chain is
 * too young (shorter than the depth, no safe or finalized block yet), or its confirmed head is
 * still below the deployment block.
 */
export type NothingYet =
  | { readonly nothingYet: 'belowDepth'; readonly latest: bigint; readonly confirmations: number }
  | { readonly nothingYet: 'noTaggedHead'; readonly tag: 'safe' | 'finalized' }
  | { readonly nothingYet: 'belowDeployment'; readonly head: bigint; readonly deploymentBlock: bigint };

/** A step's outcome: what it did, why there is nothing to ingest yet, or null when there was nothing new. */
export type StepOutcome = StepReport | NothingYet | null;

export const isNothingYet = (outcome: object | null): outcome is NothingYet => outcome !== null && 'nothingYet' in outcome;

/** In words, for the `ingest` command's output and the service's log. */
export function nothingYetText(n: NothingYet): string {
  const why =
    n.nothingYet === 'belowDepth' ? `the chain's head ${n.latest} is below the confirmation depth ${n.confirmations}`
    : n.nothingYet === 'noTaggedHead' ? `the chain has no ${n.tag} block yet`
    : `the confirmed head ${n.head} is below the deployment block ${n.deploymentBlock}`;
  return `${why}; nothing to ingest yet`;
}

export interface StepProgress extends BlockRange {
  /** The last block scanned so far. */
  readonly done: bigint;
  /** Logs appended so far. */
  readonly logs: number;
}

/** Told where the chain and the ledger are, as steps go (the service's metrics). */
export interface FollowObserver {
  /** The confirmed head a step works towards. */
  head(block: bigint): void;
  /** Every log up to `block` is in the stream; `appended` were new. */
  ingested(block: bigint, appended: number): void;
}

/** The node as far as the follower reads it (heads and block hashes; logs come through the scanner). */
export type FollowerRpc = Pick<ChainRpc, 'consistent' | 'doubting' | 'blockNumber' | 'block' | 'checkChainId'>;

export interface FollowerOptions {
  readonly rpc: FollowerRpc;
  readonly scanner: Pick<LogScanner, 'scan'>;
  readonly ingester: Ingester;
  readonly confirmations: Confirmations;
  readonly deploymentBlock: bigint;
  readonly log: Logger;
  readonly observer?: FollowObserver;
}

type Start = { readonly from: bigint; readonly kind: 'fresh' | 'verified' | 'reorg' };

/** What a forward step or rescan did, and why a reorg during it stopped it early (null when none did). */
type Outcome = { readonly report: ReconcileReport; readonly interrupted: string | null };

const NOTHING: ReconcileReport = { appended: 0, removed: 0, alreadyIngested: 0, tokensRecorded: 0 };

/** Steps tried in one call when reorgs keep interrupting them. */
const STEPS_PER_CALL = 3;

const logBlocks = (logs: readonly RecordedLog[]): BlockHash[] => logs.map((l) => ({ block: l.blockNumber, hash: l.blockHash }));

/**
 * The chain reorganised during every step of one call: the ledger is not up to the confirmed
 * head. A chain that does not settle within a few steps is most likely nodes behind a balancer
 * on different forks, or a provider answering garbage hashes; the service tries again at its
 * next poll, a single pass (`ingest`) stops here rather than report the head reached.
 */
export class ChainUnsettled extends Error {
  override readonly name = 'ChainUnsettled';
}

/** The node answered no block for a tag. */
class NoTaggedBlock extends Error {
  override readonly name = 'NoTaggedBlock';
}

export class ChainFollower {
  private window: BlockWindow | null = null;
  /**
   * The head the last step that ran to its end reached. The window's top, read from the stream, is only the
   * block of the last stored log: a crash may have cut that block's appends short, so a first step at that
   * very head scans it again rather than take the ledger for up to date.
   */
  private completed: BlockRef | null = null;
  /**
   * Set when the index places two live logs in one block under different hashes (`RecentLogs.conflicted`): that block.
   * One of the logs is not where the index says, and may be anywhere the index reaches: the steps rescan every block
   * it holds until one reaches that block.
   */
  private resync: bigint | null = null;
  /**
   * The block the stream's last event relies on, as a restart read it, for the first start after: the chain must still
   * have its log there, or must not have again the log it removed. The window's top alone would not say: after a rescan
   * to a shorter fork, it can be a block of the other fork left above that head, which checks out again once that fork
   * comes back, while the rescan's events below it are the shorter fork's.
   */
  private lastAppended: EventPlace | null = null;

  constructor(private readonly options: FollowerOptions) {}

  /** Forgets the blocks and logs it read: the next step starts from the stream's tail as it is then. */
  restartFromStream(): void {
    this.window = null;
    this.completed = null;
    this.resync = null;
    this.options.ingester.forget();
  }

  /**
   * The newest block deep enough to ingest, or why the chain has none. A node without the block
   * below the head it just reported (one behind a balancer lagging the one that answered, or a
   * head that was garbage) is asked again, head first: taken for "nothing new", it had a pass
   * report the ledger up to date with nothing ingested.
   */
  private async confirmedHead(): Promise<BlockRef | NothingYet> {
    const { rpc, confirmations } = this.options;
    if (typeof confirmations === 'string') return this.taggedHead(confirmations);
    return rpc.consistent('the confirmed head', async () => {
      const latest = await rpc.blockNumber();
      if (latest < BigInt(confirmations)) return { nothingYet: 'belowDepth', latest, confirmations };
      const block = await rpc.block(latest - BigInt(confirmations));
      if (block === null) throw new MalformedRpcResponse(`eth_getBlockByNumber has no block ${latest - BigInt(confirmations)}, though eth_blockNumber answered ${latest}`);
      return block;
    });
  }

  /**
   * The node's `safe` / `finalized` block. None is believed only when the node keeps saying so (a
   * young chain): once, from a node behind a balancer, it had a pass report nothing to ingest yet.
   * One above the latest block is asked again, like a malformed answer: scanned to,
   * its blocks are missing, and three such answers stopped a pass (ChainUnsettled).
   */
  private taggedHead(tag: 'safe' | 'finalized'): Promise<BlockRef | NothingYet> {
    const { rpc } = this.options;
    const noBlock = (e: unknown) => e instanceof NoTaggedBlock;
    const what = `the ${tag} head`;
    return rpc.consistent(what, async () => {
      const tagged = await rpc
        .doubting(what, async () => (await rpc.block(tag)) ?? Promise.reject(new NoTaggedBlock(`eth_getBlockByNumber has no ${tag} block`)), noBlock, 'the node has no tagged block; asking again')
        .catch((error: unknown) => (noBlock(error) ? null : Promise.reject(error)));
      if (tagged === null) return { nothingYet: 'noTaggedHead', tag };
      const latest = await rpc.blockNumber(); // after the tag: on one node, the latest block is never below it
      if (tagged.number > latest) throw new MalformedRpcResponse(`eth_getBlockByNumber has the ${tag} block at ${tagged.number}, above eth_blockNumber's ${latest}`);
      return tagged;
    });
  }

  /**
   * Brings the stream up to the confirmed head as of now; null when there was nothing new, or
   * why there is nothing to ingest yet. A reorg during a step stops it; the next one, right
   * away (up to STEPS_PER_CALL in one call), finds and reconciles it. Throws ChainUnsettled when
   * every one of them was interrupted.
   */
  async step(onProgress?: (progress: StepProgress) => void): Promise<StepOutcome> {
    let report: StepReport | null = null;
    for (let attempt = 1; ; attempt++) {
      const part = await this.stepOnce(onProgress);
      if (part === null || isNothingYet(part)) return report ?? part;
      report = report === null ? part.report : afterInterruption(report, part.report);
      if (part.interrupted === null) return report;
      if (attempt >= STEPS_PER_CALL) {
        throw new ChainUnsettled(
          `the chain reorganised during each of ${STEPS_PER_CALL} steps towards block ${report.to}, the last time: ${part.interrupted}; ${report.appended} logs appended, the ledger is not up to the confirmed head`,
        );
      }
    }
  }

  private async stepOnce(onProgress?: (progress: StepProgress) => void): Promise<{ report: StepReport; interrupted: string | null } | NothingYet | null> {
    // The head's hash is read before any log: a reorg after it shows up at the next step.
    const head = await this.confirmedHead();
    if (isNothingYet(head)) return head;
    this.options.observer?.head(head.number);
    const window = await this.loadWindow();
    const start = await this.start(window, head);
    if (start.kind === 'fresh' && start.from > head.number) return { nothingYet: 'belowDeployment', head: head.number, deploymentBlock: start.from };
    const upToDate = start.kind === 'verified' && (start.from > head.number || (start.from === head.number && this.completed?.hash === head.hash));
    if (upToDate) this.options.observer?.ingested(head.number, 0);
    if (upToDate || start.from > head.number) return null;
    const range = { from: start.from, to: head.number };
    const { report, interrupted } = start.kind === 'reorg' ? await this.rescan(range, head, window) : await this.forward(range, head, window, onProgress);
    const outcome = { report: { ...range, reorg: start.kind === 'reorg', ...report }, interrupted };
    // An interrupted step vouches for nothing up to the head: the next one starts below it.
    if (interrupted !== null) return outcome;
    window.remember({ block: head.number, hash: head.hash });
    this.completed = head;
    if (this.resync !== null && head.number >= this.resync) this.resync = null;
    // The stream's last block scanned again after a restart, and found whole: nothing new.
    return start.kind === 'verified' && start.from === head.number && report.appended === 0 && report.removed === 0 ? null : outcome;
  }

  private async forward(range: BlockRange, head: BlockRef, window: BlockWindow, onProgress?: (progress: StepProgress) => void): Promise<Outcome> {
    let total = NOTHING;
    for await (const chunk of this.options.scanner.scan(range, head.hash)) {
      // An empty answer appends nothing; a reorg of the head still shows at the next step's start.
      const interrupted = chunk.forked !== undefined ? this.forked(head, chunk.forked) : chunk.logs.length > 0 ? await this.moved(head, chunk.logs) : null;
      if (interrupted !== null) return { report: total, interrupted };
      const report = await this.options.ingester.appendCanonical(chunk.logs);
      total = sum(total, report);
      logBlocks(chunk.logs).forEach((b) => window.remember(b));
      this.options.observer?.ingested(chunk.to, report.appended);
      onProgress?.({ ...range, done: chunk.to, logs: total.appended });
    }
    return { report: total, interrupted: null };
  }

  private async rescan(range: BlockRange, head: BlockRef, window: BlockWindow): Promise<Outcome> {
    const chunks: LogChunk[] = [];
    for await (const chunk of this.options.scanner.scan(range, head.hash)) {
      if (chunk.forked !== undefined) return { report: NOTHING, interrupted: this.forked(head, chunk.forked) };
      chunks.push(chunk);
    }
    const logs = chunks.flatMap((c) => c.logs);
    const interrupted = await this.moved(head, logs);
    if (interrupted !== null) return { report: NOTHING, interrupted };
    const report = await this.options.ingester.reconcile(range, logs);
    this.options.observer?.ingested(range.to, report.appended);
    this.options.log.warn({ ...range, removed: report.removed, appended: report.appended, kept: report.alreadyIngested }, 'reorg reconciled');
    // Blocks above the head: the next steps find them changed and rescan them once confirmed.
    window.forget(range.from, range.to);
    window.distrustAbove(range.to);
    logBlocks(logs).forEach((b) => window.remember(b));
    return { report, interrupted: null };
  }

  /**
   * Why logs read during this step are no longer the chain's, or null while they are: it still
   * has the step's head and the newest block the logs are in (a block's hash commits to every
   * block below it).
   */
  private async moved(head: BlockRef, logs: readonly RecordedLog[]): Promise<string | null> {
    const newest = logs.at(-1);
    const relied = [{ block: head.number, hash: head.hash }];
    if (newest !== undefined && newest.blockNumber !== head.number) relied.push({ block: newest.blockNumber, hash: newest.blockHash });
    const changes = await Promise.all(relied.map((b) => this.changed(b)));
    const stale = newest?.blockNumber === head.number && newest.blockHash !== head.hash ? `eth_getLogs has block ${head.number} as ${newest.blockHash}, not ${head.hash}` : null;
    const why = changes.find((c) => c !== null) ?? stale;
    return why === null ? null : this.forked(head, why);
  }

  /** Logs (and returns) why the step stops: the chain reorganised during it. */
  private forked(head: BlockRef, why: string): string {
    this.options.log.warn({ head: head.number, hash: head.hash, why }, 'the chain reorganised during the step; it stops before these logs');
    return why;
  }

  /** How eth_getBlockByNumber now differs from a block read before, or null when it does not. */
  private async changed({ block, hash }: BlockHash): Promise<string | null> {
    const now = await this.hashAt(block);
    return now === hash ? null : `eth_getBlockByNumber has block ${block} as ${now ?? 'missing'}, not ${hash}`;
  }

  /**
   * Block n's hash on the chain now; null when the chain has no block n (it got shorter). A node
   * that has none though the latest block is at or above n lags the others (one behind a balancer):
   * asked again, head too, as the confirmed head is, rather than taken for a reorg.
   */
  private hashAt(n: bigint): Promise<string | null> {
    const { rpc } = this.options;
    return rpc.consistent(`block ${n}`, async () => {
      const block = await rpc.block(n);
      if (block !== null) return block.hash;
      const latest = await rpc.blockNumber();
      if (latest >= n) throw new MalformedRpcResponse(`eth_getBlockByNumber has no block ${n}, though eth_blockNumber answered ${latest}`);
      return null;
    });
  }

  /**
   * Where the step starts: the window's newest block if the chain still has it, else the highest
   * one it still has. Between new blocks the newest is the head just read: no second request.
   */
  private async start(window: BlockWindow, head: BlockRef): Promise<Start> {
    const start = await this.chainStart(window, head);
    if (this.resync === null) return start;
    // From the floor the index has now (this follower's appends and a racer's raise it: a rescan below it cannot reconcile),
    // or from below it when the chain reorganised there: a rescan from the floor alone would take those blocks for unchanged.
    const floor = await this.options.ingester.floor();
    return { from: min(start.from, max(floor, this.options.deploymentBlock)), kind: 'reorg' };
  }

  /** Where the step starts by the window alone. */
  private async chainStart(window: BlockWindow, head: BlockRef): Promise<Start> {
    const top = window.top();
    if (top === undefined) return { from: this.options.deploymentBlock, kind: 'fresh' };
    const last = this.lastAppended;
    this.lastAppended = null; // checked at the first start after a restart only: later ones follow this follower's own steps
    const canonical = top.block === head.number ? top.hash === head.hash : await this.stillCanonical(top);
    const checked = last === null || (!last.removed && last.block === top.block && last.hash === top.hash); // the usual case
    const doubted = canonical && !checked && (await this.stillCanonical(last)) === last.removed ? last : null;
    if (canonical && doubted === null) return { from: top.block, kind: 'verified' };
    await this.options.rpc.checkChainId(); // another network has none of these blocks either: that is no reorg
    const changed = doubted ?? top;
    this.options.log.warn({ block: changed.block, hash: changed.hash }, 'the chain no longer has a block the ledger relies on: reorg');
    const below = window.descending().filter((b) => b.block < changed.block); // sorted only on the way to a reorg
    for (const block of below) if (await this.stillCanonical(block)) return { from: block.block, kind: 'reorg' };
    if (window.complete) return { from: this.options.deploymentBlock, kind: 'reorg' };
    const oldest = below.at(-1) ?? changed;
    throw new ReorgTooDeep(`the chain no longer has block ${oldest.block} (${oldest.hash}), the oldest the ingester remembers: the reorg is deeper than its window`);
  }

  private async stillCanonical({ block, hash }: BlockHash): Promise<boolean> {
    return (await this.hashAt(block)) === hash;
  }

  private async loadWindow(): Promise<BlockWindow> {
    if (this.window) return this.window;
    const { blocks, floor, conflicted, lastAppended } = await this.options.ingester.recentBlocks();
    this.lastAppended = lastAppended;
    // Blocks from `floor` on are the index's; a log past its tail in a block above every one it holds (a reorg's
    // churn below it pushed it out) is one whose block no check would look at, nor a rescan compensate.
    const top = blocks.at(-1)?.block ?? -1n;
    if (floor - 1n > top) {
      throw new ReorgTooDeep(`the ledger holds logs up to block ${floor - 1n} that the ingester's index of the stream's last logs no longer holds (it holds blocks up to ${top < 0n ? 'none' : top}): a reorg there could not be found`);
    }
    this.window = new BlockWindow(blocks, floor > 0n);
    if (conflicted !== null) {
      this.resync = conflicted;
      this.options.log.warn({ block: conflicted, floor }, 'the ledger has logs in one block under two hashes: rescanning the blocks its index holds');
    }
    return this.window;
  }
}

/** A step interrupted by a reorg, then the step after it: one report from the first's start to the second's head. */
const afterInterruption = (first: StepReport, next: StepReport): StepReport => ({
  ...sum(first, next),
  from: min(first.from, next.from),
  to: next.to,
  reorg: true,
});

const sum = (a: ReconcileReport, b: ReconcileReport): ReconcileReport => ({
  appended: a.appended + b.appended,
  removed: a.removed + b.removed,
  alreadyIngested: a.alreadyIngested + b.alreadyIngested,
  tokensRecorded: a.tokensRecorded + b.tokensRecorded,
});
