/**
 * Follows the chain into the orderbook stream one step at a time: check that the chain still
 * has the newest block the ledger relies on (or find the highest one it still has), then scan
 * from there to the confirmed head. Backfill and live are the same step; only the distance to
 * the head differs.
 *
 * A forward step appends the logs it has not stored; it never removes. A step after a reorg
 * rescans from the highest block the chain still has to the confirmed head in one piece, so a
 * transaction re-mined into another block is found before anything is removed.
 */
import type { Logger } from '../log.ts';
import { ReorgTooDeep, type Ingester, type ReconcileReport } from '../services/ingester.ts';
import { BlockWindow } from './block-window.ts';
import type { BlockRange, LogChunk, LogScanner } from './log-scanner.ts';
import type { BlockHash } from './recent-logs.ts';
import type { RecordedLog } from './rpc-log.ts';
import type { BlockRef, ChainRpc } from './rpc.ts';

/** Blocks behind the latest, or the node's `safe` / `finalized` head. */
export type Confirmations = number | 'safe' | 'finalized';

export interface StepReport extends BlockRange, ReconcileReport {
  /** The step rescanned blocks a reorg replaced. */
  readonly reorg: boolean;
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

export interface FollowerOptions {
  readonly rpc: ChainRpc;
  readonly scanner: LogScanner;
  readonly ingester: Ingester;
  readonly confirmations: Confirmations;
  readonly deploymentBlock: bigint;
  readonly log: Logger;
  readonly observer?: FollowObserver;
}

type Start = { readonly from: bigint; readonly kind: 'fresh' | 'verified' | 'reorg' };

const logBlocks = (logs: readonly RecordedLog[]): BlockHash[] => logs.map((l) => ({ block: l.blockNumber, hash: l.blockHash }));

export class ChainFollower {
  private window: BlockWindow | null = null;

  constructor(private readonly options: FollowerOptions) {}

  /** The newest block deep enough to ingest; null while the chain is shorter than the depth. */
  async confirmedHead(): Promise<BlockRef | null> {
    const { rpc, confirmations } = this.options;
    if (typeof confirmations === 'string') return rpc.block(confirmations);
    const latest = await rpc.blockNumber();
    return latest < BigInt(confirmations) ? null : rpc.block(latest - BigInt(confirmations));
  }

  /** Brings the stream up to the confirmed head as of now; null when there was nothing new. */
  async step(onProgress?: (progress: StepProgress) => void): Promise<StepReport | null> {
    // The head's hash is read before any log: a reorg after it shows up at the next step.
    const head = await this.confirmedHead();
    if (head === null) return null;
    this.options.observer?.head(head.number);
    const window = await this.loadWindow();
    const start = await this.start(window, head);
    const upToDate = start.kind === 'verified' && start.from >= head.number;
    if (upToDate) this.options.observer?.ingested(head.number, 0);
    if (upToDate || start.from > head.number) return null;
    const range = { from: start.from, to: head.number };
    const report = start.kind === 'reorg' ? await this.rescan(range, window) : await this.forward(range, window, onProgress);
    window.remember({ block: head.number, hash: head.hash });
    return { ...range, reorg: start.kind === 'reorg', ...report };
  }

  private async forward(range: BlockRange, window: BlockWindow, onProgress?: (progress: StepProgress) => void): Promise<ReconcileReport> {
    let total: ReconcileReport = { appended: 0, removed: 0, alreadyIngested: 0, tokensRecorded: 0 };
    for await (const chunk of this.options.scanner.scan(range)) {
      const report = await this.options.ingester.appendCanonical(chunk.logs);
      total = sum(total, report);
      logBlocks(chunk.logs).forEach((b) => window.remember(b));
      this.options.observer?.ingested(chunk.to, report.appended);
      onProgress?.({ ...range, done: chunk.to, logs: total.appended });
    }
    return total;
  }

  private async rescan(range: BlockRange, window: BlockWindow): Promise<ReconcileReport> {
    const chunks: LogChunk[] = [];
    for await (const chunk of this.options.scanner.scan(range)) chunks.push(chunk);
    const logs = chunks.flatMap((c) => c.logs);
    const report = await this.options.ingester.reconcile(range, logs);
    this.options.observer?.ingested(range.to, report.appended);
    this.options.log.warn({ ...range, removed: report.removed, appended: report.appended, kept: report.alreadyIngested }, 'reorg reconciled');
    // Blocks above the head keep their old hashes: the next steps find them changed and rescan them once confirmed.
    window.forget(range.from, range.to);
    logBlocks(logs).forEach((b) => window.remember(b));
    return report;
  }

  /**
   * Where the step starts: the window's newest block if the chain still has it, else the highest
   * one it still has. Between new blocks the newest is the head just read: no second request.
   */
  private async start(window: BlockWindow, head: BlockRef): Promise<Start> {
    const top = window.top();
    if (top === undefined) return { from: this.options.deploymentBlock, kind: 'fresh' };
    const canonical = top.block === head.number ? top.hash === head.hash : await this.stillCanonical(top);
    if (canonical) return { from: top.block, kind: 'verified' };
    this.options.log.warn({ block: top.block, hash: top.hash }, 'the chain no longer has a block the ledger relies on: reorg');
    const below = window.descending().slice(1); // sorted only on the way to a reorg
    for (const block of below) if (await this.stillCanonical(block)) return { from: block.block, kind: 'reorg' };
    if (window.complete) return { from: this.options.deploymentBlock, kind: 'reorg' };
    const oldest = below.at(-1) ?? top;
    throw new ReorgTooDeep(`the chain no longer has block ${oldest.block} (${oldest.hash}), the oldest the ingester remembers: the reorg is deeper than its window`);
  }

  private async stillCanonical({ block, hash }: BlockHash): Promise<boolean> {
    return (await this.options.rpc.block(block))?.hash === hash;
  }

  private async loadWindow(): Promise<BlockWindow> {
    if (this.window) return this.window;
    const { blocks, floor } = await this.options.ingester.recentBlocks();
    this.window = new BlockWindow(blocks, floor > 0n);
    return this.window;
  }
}

const sum = (a: ReconcileReport, b: ReconcileReport): ReconcileReport => ({
  appended: a.appended + b.appended,
  removed: a.removed + b.removed,
  alreadyIngested: a.alreadyIngested + b.alreadyIngested,
  tokensRecorded: a.tokensRecorded + b.tokensRecorded,
});
