/**
 * The hashes of recent blocks the ledger relies on: blocks it holds logs of, and each scan's
 * confirmed head. A block hash commits to every block below it, so the chain still having the
 * highest one proves nothing the ledger holds was reorganised; the highest one it still has
 * is where a reorg's rescan starts.
 */
import type { BlockHash } from './recent-logs.ts';

const WINDOW_BLOCKS = 1_024;

/** A hash no block has. */
const NO_HASH = `0x${'00'.repeat(32)}` as const;

export class BlockWindow {
  private readonly hashes = new Map<bigint, `0x${string}`>();
  /** Older blocks were forgotten: a reorg below the oldest remembered one cannot be located. */
  private pruned: boolean;

  constructor(
    seed: readonly BlockHash[],
    /** The seed does not reach the stream's first log. */
    partial: boolean,
  ) {
    this.pruned = partial;
    seed.forEach((b) => this.remember(b));
  }

  /** Whether the window reaches back to the stream's first log (so a rescan from the deployment block is safe). */
  get complete(): boolean {
    return !this.pruned;
  }

  remember({ block, hash }: BlockHash): void {
    this.hashes.delete(block);
    this.hashes.set(block, hash);
    if (this.hashes.size <= WINDOW_BLOCKS) return;
    // Blocks arrive in ascending order (a reorg forgets the higher ones first): the first is the oldest.
    this.hashes.delete(this.hashes.keys().next().value!);
    this.pruned = true;
  }

  /** Forgets the blocks in (after, through]: a rescan replaced them. */
  forget(after: bigint, through: bigint): void {
    for (const b of this.hashes.keys()) if (b > after && b <= through) this.hashes.delete(b);
  }

  /**
   * Blocks above `head` that a rescan to it (a shorter chain) left: their logs stay until the chain is confirmed past
   * them, but they no longer vouch for the blocks below, which the rescan took from another fork. Were the chain to
   * come back on their fork, the top would check out and the rescan's logs below it stay counted: each counts as
   * changed until a rescan replaces it.
   */
  distrustAbove(head: bigint): void {
    for (const b of this.hashes.keys()) if (b > head) this.hashes.set(b, NO_HASH);
  }

  top(): BlockHash | undefined {
    let top: BlockHash | undefined;
    for (const [block, hash] of this.hashes) if (top === undefined || block > top.block) top = { block, hash };
    return top;
  }

  descending(): BlockHash[] {
    return [...this.hashes].map(([block, hash]) => ({ block, hash })).sort((a, b) => (a.block > b.block ? -1 : a.block < b.block ? 1 : 0));
  }
}
