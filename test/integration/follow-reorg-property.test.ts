/**
 * The reorg property of ingest-reorg-property.test.ts, driven through the real ChainFollower (its
 * block window, start block and rescan range, forward steps in several deliveries) and Ingester on
 * SQLite, over a simulated chain (test/support/reorg-chain.ts; the node and the log scanner are
 * simulated here, to run thousands of interleavings in seconds: the real ones meet a real anvil in
 * chain-*.test.ts and e2e-chaos.test.ts): reorgs that keep, grow or shorten the chain, crashes between an ingester's appends (a store
 * that fails an append, before or after writing it), restarts, small batches and a small index.
 * Whenever the chain is at least as long as it ever was, the ledger folds to the positions and
 * rejections of the current chain ingested from scratch, and every event id is unique.
 *
 * FOLLOW_PROPERTY_RUNS=<n> runs more chains (default 40); FOLLOW_PLAN='<counterexample JSON>' runs one.
 * Some runs draw a small index (recentLogs 30..60), so that restarts cut its tail inside a reorg's events and
 * logs removed before its tail come back (ingest.test.ts, 'a log a reorg removed before the index's tail…'). A
 * reorg deeper than such an index ends the run with ReorgTooDeep, as documented, and so does a racer that keeps
 * leaving the other behind its index (an index of a few dozen logs may hold nothing but removals: the window is
 * empty and a restart starts from the deployment block, below the index: StreamMovedOn again; the default index
 * of 5,000 logs does not meet this). `floorMark` has half the restarts find the floor checkpoint gone or unreadable.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { keccak256, stringToHex } from 'viem';
import type { BlockRange, LogChunk } from '../../src/chain/log-scanner.ts';
import type { BlockRef } from '../../src/chain/rpc.ts';
import { ChainFollower, type FollowerOptions, type FollowerRpc } from '../../src/chain/follower.ts';
import { ReorgTooDeep, StreamMovedOn } from '../../src/services/ingester.ts';
import type { EventStore } from '../../src/eventstore/port.ts';
import { mulberry32 } from '../../src/seeded-random.ts';
import { History } from '../support/orderbook-logs.ts';
import { Chain, eventIds, ingesterOn, ledgerOf, logsOf, memoryStores, type Block, type Blocks, type Tx } from '../support/reorg-chain.ts';
import { dyingStore } from '../support/chain-fixture.ts';
import { testLog } from '../support/test-log.ts';
import { config } from '../support/scenario.ts';

const RUNS = Number(process.env['FOLLOW_PROPERTY_RUNS'] ?? 40);

const memoryStore = memoryStores();

type Knobs = Parameters<typeof ingesterOn>[1];

const genesisHash = (n: bigint) => keccak256(stringToHex(`genesis ${n}`));

/** The node, as the follower reads it, over the simulated chain (confirmations 0). */
function fakeRpc(chain: Blocks): FollowerRpc {
  const block = async (n: bigint | 'safe' | 'finalized'): Promise<BlockRef | null> => {
    if (typeof n !== 'bigint') throw new Error(`the simulated chain has no ${n} block`);
    if (n < 100n) return { number: n, hash: genesisHash(n) };
    const b = chain.blocks.find((x) => x.number === n);
    return b === undefined ? null : { number: b.number, hash: b.hash };
  };
  return {
    consistent: <T>(_what: string, read: () => Promise<T>) => read(),
    doubting: <T>(_what: string, read: () => Promise<T>) => read(),
    blockNumber: async () => chain.tip,
    block,
    checkChainId: async () => undefined,
  };
}

/** eth_getLogs over the simulated chain, in chunks of random sizes (never splitting a block, as LogScanner does). */
function fakeScanner(chain: Blocks, history: History, random: () => number): FollowerOptions['scanner'] {
  return {
    async *scan(range: BlockRange): AsyncGenerator<LogChunk> {
      for (let from = range.from; from <= range.to; ) {
        const to = from + BigInt(Math.floor(random() * 3));
        const end = to > range.to ? range.to : to;
        const logs = chain.blocks.filter((b) => b.number >= from && b.number <= end).flatMap((b) => logsOf(history, b));
        yield { from, to: end, logs };
        from = end + 1n;
      }
    },
  };
}

const TOPIC_NAMES: Record<string, string> = { '0x692e': 'ClearV2', '0x3f20': 'AfterClear', '0xdb6a': 'Take' };

/** FOLLOW_DEBUG=1: the stream and the chain, printed when a check fails. */
async function dump(store: EventStore, stream: string, chain: Blocks, labels: ReadonlyMap<string, string>): Promise<void> {
  if (process.env['FOLLOW_DEBUG'] === undefined) return;
  const lines: string[] = [];
  for await (const e of store.readStream(stream)) {
    const d = e.data as { logId?: string; transactionHash: string; blockNumber: string; blockHash: string; logIndex: string; topics: string[]; data: string };
    const what = `${TOPIC_NAMES[d.topics[0]!.slice(0, 6)] ?? '?'}${d.data.length < 200 ? '(bad)' : ''}`;
    const tx = labels.get(d.transactionHash) ?? d.transactionHash.slice(0, 8);
    lines.push(`${e.revision} ${e.type === 'OrderbookLogRemoved' ? 'REMOVED ' : 'recorded'} ${e.id.slice(0, 8)}${d.logId === undefined ? '' : ` (of ${d.logId.slice(0, 8)})`} ${tx} block ${BigInt(d.blockNumber)}:${d.blockHash.slice(0, 6)} index ${BigInt(d.logIndex)} ${what}`);
  }
  for (const b of chain.blocks) lines.push(`chain ${b.number}:${b.hash.slice(0, 6)} ${b.txs.map((t) => `${t.label}=${t.kind}[${t.tenths.join(',')}]`).join(', ')}`);
  console.log(lines.join('\n'));
}

interface FollowPlan {
  readonly seed: number;
  readonly knobs: Knobs;
  readonly crashes: boolean;
  readonly shorten: boolean;
  /** Two followers (their own ingesters and windows) step at once on the store. */
  readonly racing?: boolean;
  /** At half the restarts the floor checkpoint is gone, or unreadable: the index reads the stream before its tail again. */
  readonly floorMark?: 'dropped' | 'unreadable' | undefined;
}

/** The ingester's floor checkpoint (docs/chain-ingestion.md, "The index and its floor"). */
const FLOOR_CHECKPOINT = `ingester_floor_${config.fills.chainId}_${config.fills.orderbook.toLowerCase()}`;

async function followerFollowsChain({ seed, knobs, crashes, shorten, racing = false, floorMark }: FollowPlan): Promise<void> {
  const history = new History();
  const chain = new Chain(mulberry32(seed));
  const random = mulberry32(seed ^ 0x5bd1e995);
  const store = await memoryStore();
  const followerOn = (s: EventStore) => {
    const ingester = ingesterOn(s, knobs);
    return { ingester, follower: new ChainFollower({ rpc: fakeRpc(chain), scanner: fakeScanner(chain, history, random), ingester, confirmations: 0, deploymentBlock: 100n, log: testLog() }) };
  };
  let current = followerOn(store);
  // Draws only for the knob that asks for it: a plan without it replays as before.
  const restarted = async () => {
    const head = await store.headPosition();
    if (floorMark !== undefined && head !== undefined && random() < 0.5) {
      await store.saveCheckpoint(FLOOR_CHECKPOINT, floorMark === 'dropped' ? { position: head } : { position: head, snapshot: '{"before":' });
    }
    return followerOn(store);
  };
  chain.grow(3);
  let longest = chain.tip;
  /**
   * A step, as the service takes it: a follower another one left behind its index follows the stream from its tail
   * (StreamMovedOn). False when a reorg went deeper than a small index reaches (ReorgTooDeep, a documented stop),
   * or a racer keeps leaving this one behind it: the run ends there.
   */
  const stepped = async (follower: ChainFollower, retries = 3): Promise<boolean> => {
    try {
      await follower.step();
      return true;
    } catch (e) {
      if (e instanceof StreamMovedOn && retries > 0) {
        follower.restartFromStream();
        return stepped(follower, retries - 1);
      }
      if (knobs?.recentLogs !== undefined && (e instanceof ReorgTooDeep || e instanceof StreamMovedOn)) return false;
      throw e;
    }
  };
  const where = (step: number, what: string) => `seed ${seed} ${JSON.stringify(knobs)} crashes ${crashes} shorten ${shorten} racing ${racing} floorMark ${floorMark}, step ${step}: ${what}`;
  for (let step = 0; step < 12; step++) {
    if (random() < 0.4 || chain.blocks.length < 2) chain.grow(1 + Math.floor(random() * 2));
    else {
      const depth = 1 + Math.floor(random() * Math.min(3, chain.blocks.length - 1));
      const length = shorten && random() < 0.3 ? Math.max(0, depth - 1 - Math.floor(random() * 2)) : depth + (random() < 0.3 ? 1 : 0);
      chain.reorg(depth, length);
    }
    if (chain.tip > longest) longest = chain.tip;
    if (process.env['FOLLOW_DEBUG'] !== undefined) console.log(`step ${step}: chain ${chain.blocks.map((b) => `${b.number}:${b.hash.slice(0, 6)}`).join(' ')}`);
    if (random() < 0.25) current = await restarted();
    if (crashes && random() < 0.4) {
      // A store that fails its n-th append (before or after writing it): the step throws, the service starts over from the stream.
      const dying = followerOn(dyingStore(store, 1 + Math.floor(random() * 4), random() < 0.5 ? 'before' : 'after'));
      await dying.follower.step().catch((e: unknown) => process.env['FOLLOW_DEBUG'] !== undefined && console.log(`crash: ${(e as Error).message}`));
      current = await restarted();
    }
    if (racing) {
      // A racer that fails (the other appended past its plan, or its index) starts over from the stream, as the service does.
      const other = followerOn(store);
      const outcomes = await Promise.allSettled([current.follower.step(), other.follower.step()]);
      if (outcomes.some((o) => o.status === 'rejected')) current = followerOn(store);
      if (!(await stepped(current.follower)) || !(await stepped(current.follower))) return;
    } else if (!(await stepped(current.follower))) return;
    if (chain.tip < longest) continue; // logs above a shorter chain's head stay until it regrows (docs/chain-ingestion.md)
    const fresh = await memoryStore();
    await ingesterOn(fresh).appendCanonical(chain.blocks.flatMap((b) => logsOf(history, b)));
    const ledger = await ledgerOf(store);
    const expected = await ledgerOf(fresh);
    if (JSON.stringify(ledger) !== JSON.stringify(expected)) {
      const labels = new Map(Array.from({ length: 200 }, (_, i) => [keccak256(stringToHex(`tx ${i}`)), `tx ${i}`]));
      await dump(store, current.ingester.stream, chain, labels);
    }
    expect(ledger, where(step, 'the ledger against the chain ingested from scratch')).toEqual(expected);
    const ids = await eventIds(store, current.ingester.stream);
    expect(new Set(ids).size, where(step, 'unique event ids')).toBe(ids.length);
  }
}

/** A chain of hand-made blocks, each with its transactions' logs, for focused cases. */
class FixedChain implements Blocks {
  blocks: Block[] = [];
  set(blocks: Block[]): void {
    this.blocks = blocks;
  }
  get tip(): bigint {
    return this.blocks.at(-1)!.number;
  }
}

const take = (label: string, tenths: bigint, side: 'BUY' | 'SELL' = 'SELL'): Tx => ({ label, kind: 'take', side, symbol: 'GME', tenths: [tenths] });
const blockOf = (fork: string, number: bigint, txs: Tx[]): Block => ({ number, hash: keccak256(stringToHex(`${fork} block ${number}`)), txs });

describe('the chain follower after a crash in the middle of a reorg', () => {
  it('a reorg that moves a kept log above new logs, interrupted before its events are appended, is finished by the restarted follower', async () => {
    const history = new History();
    const chain = new FixedChain();
    const store = await memoryStore();
    const followerOn = (s: EventStore) =>
      new ChainFollower({ rpc: fakeRpc(chain), scanner: fakeScanner(chain, history, () => 0), ingester: ingesterOn(s), confirmations: 0, deploymentBlock: 100n, log: testLog() });
    const [t1, t2, t3] = [take('t1', 10n), take('t2', 20n), take('t3', 40n, 'BUY')];
    chain.set([blockOf('a', 100n, []), blockOf('a', 101n, [t1]), blockOf('a', 102n, [t2])]);
    await followerOn(store).step();

    // The reorg: t3 new in 101, t2 dropped, t1 re-mined into 103 (same log index and content: kept, its place moved).
    chain.set([blockOf('a', 100n, []), blockOf('b', 101n, [t3]), blockOf('b', 102n, []), blockOf('b', 103n, [t1])]);
    // The rescan saves where t1 now is, then the store fails the first append (t2's removal): the step throws.
    await expect(followerOn(dyingStore(store, 1, 'before')).step()).rejects.toThrow('stopped before append 1');

    // The service starts over from the stream: the restarted follower must still remove t2 and record t3.
    await followerOn(store).step();
    chain.set([...chain.blocks, blockOf('b', 104n, [])]);
    await followerOn(store).step();
    const fresh = await memoryStore();
    await ingesterOn(fresh).appendCanonical(chain.blocks.flatMap((b) => logsOf(history, b)));
    expect(await ledgerOf(store)).toEqual(await ledgerOf(fresh));
    expect((await ledgerOf(store)).net).toEqual({ GME: '3' }); // t3 bought 4, t1 sold 1
  });
});

describe('the chain follower after a crash in the middle of the head block', () => {
  it('a restart finishes the head block whose logs were only partly appended, without waiting for a new block', async () => {
    const history = new History();
    const chain = new FixedChain();
    const store = await memoryStore();
    const followerOn = (s: EventStore) =>
      new ChainFollower({ rpc: fakeRpc(chain), scanner: fakeScanner(chain, history, () => 0), ingester: ingesterOn(s, { batchSize: 1 }), confirmations: 0, deploymentBlock: 100n, log: testLog() });
    chain.set([blockOf('a', 100n, [take('t0', 10n)])]);
    await followerOn(store).step(); // its tokens are recorded: the next appends are the orderbook's
    chain.set([...chain.blocks, blockOf('a', 101n, [take('t1', 20n), take('t2', 40n)])]);
    // The store fails the second append: t1 is stored, t2 not.
    await expect(followerOn(dyingStore(store, 2, 'before')).step()).rejects.toThrow('stopped before append 2');
    expect((await ledgerOf(store)).net).toEqual({ GME: '-3' });

    // A restart (the `ingest` command run again, or the service after a store outage), the chain's head still 101.
    await followerOn(store).step();
    expect((await ledgerOf(store)).net).toEqual({ GME: '-7' });
  });
});

describe('the chain follower on an index that no longer reaches the ledger\'s highest block', () => {
  it('a restart whose index holds only logs below a log past its tail stops with ReorgTooDeep instead of scanning over that log\'s block as new', async () => {
    const history = new History();
    const chain = new FixedChain();
    const store = await memoryStore();
    const followerOn = (recentLogs?: number) =>
      new ChainFollower({ rpc: fakeRpc(chain), scanner: fakeScanner(chain, history, () => 0), ingester: ingesterOn(store, recentLogs === undefined ? {} : { recentLogs }), confirmations: 0, deploymentBlock: 100n, log: testLog() });
    chain.set([blockOf('a', 100n, []), ...[101n, 102n, 103n, 104n, 105n].map((n) => blockOf('a', n, [])), blockOf('a', 106n, [take('t', 10n)])]);
    await followerOn().step();
    // A shorter fork: four new logs below t's block, recorded after t (which stays until the chain regrows past it).
    chain.set([blockOf('a', 100n, []), ...[101n, 102n, 103n, 104n].map((n) => blockOf('b', n, [take(`n${n}`, 10n)]))]);
    await followerOn().step();
    // An index of three logs holds 102..104: t, in 106, is past its tail. Were 106 taken for a new block, a fork
    // without t would leave its fill counted.
    chain.set([...chain.blocks, blockOf('b', 105n, []), blockOf('b', 106n, [])]);
    await expect(followerOn(3).step()).rejects.toThrow(/holds logs up to block 106 that the ingester's index[\s\S]*holds blocks up to 104/);
    expect((await ledgerOf(store)).net).toEqual({ GME: '-5' }); // nothing taken for new; the default index sees the reorg
    await followerOn().step();
    expect((await ledgerOf(store)).net).toEqual({ GME: '-4' });
  });
});

describe('the chain follower beside a racer whose node lags behind a reorg', () => {
  it('a restart after the racer dropped from the checkpoint where a reorg re-mined a log rescans the blocks its index holds: that log is not taken for gone from its recorded block', async () => {
    const history = new History();
    const [chain, lagging] = [new FixedChain(), new FixedChain()];
    const store = await memoryStore();
    // Chunks of two blocks: a forward step delivers 102 and 103 together.
    const followerOn = (on: FixedChain) =>
      new ChainFollower({ rpc: fakeRpc(on), scanner: fakeScanner(on, history, () => 0.5), ingester: ingesterOn(store), confirmations: 0, deploymentBlock: 100n, log: testLog() });
    const [k, n, m] = [take('k', 10n), take('n', 20n), take('m', 40n, 'BUY')];
    const v1 = [blockOf('a', 100n, []), blockOf('a', 101n, []), blockOf('a', 102n, [k])];
    chain.set(v1);
    const a = followerOn(chain);
    await a.step();
    // A reorg re-mines k into 101 and brings n into 102: A keeps k, and saves where it is now.
    chain.set([blockOf('a', 100n, []), blockOf('b', 101n, [k]), blockOf('b', 102n, [n])]);
    await a.step();
    // B starts on a node still on the old fork: it has k in 102 again (so B forgets k's new place, and saves that), and no n.
    lagging.set(v1);
    const b = followerOn(lagging);
    await b.step();
    // A's next step records n again (B removed it) beside a new log m; what A knows of k it saved before, so it does not save again.
    chain.set([...chain.blocks, blockOf('b', 103n, [m])]);
    await a.step();
    // A restarts before B's node catches up: its index has k in 102 under the old fork's hash and n there under the
    // new one. Then a reorg drops m: a rescan from 102 would take k, on chain in 101, for gone.
    chain.set([...chain.blocks.slice(0, 3), blockOf('c', 103n, []), blockOf('c', 104n, [])]);
    await followerOn(chain).step();
    // B's node catches up (its own index still has k in 102).
    lagging.set(chain.blocks);
    await b.step();
    const fresh = await memoryStore();
    await ingesterOn(fresh).appendCanonical(chain.blocks.flatMap((b) => logsOf(history, b)));
    expect(await ledgerOf(store)).toEqual(await ledgerOf(fresh));
    expect((await ledgerOf(store)).net).toEqual({ GME: '-3' }); // k sold 1, n sold 2
  });
});

describe('the chain follower on an index with two live logs in one block under different hashes', () => {
  const setup = async (knobs: Knobs = {}) => {
    const history = new History();
    const chain = new FixedChain();
    const store = await memoryStore();
    const followerOn = (s: EventStore = store) =>
      new ChainFollower({ rpc: fakeRpc(chain), scanner: fakeScanner(chain, history, () => 0.5), ingester: ingesterOn(s, knobs), confirmations: 0, deploymentBlock: 100n, log: testLog() });
    const matchesChain = async () => {
      const fresh = await memoryStore();
      await ingesterOn(fresh).appendCanonical(chain.blocks.flatMap((b) => logsOf(history, b)));
      expect(await ledgerOf(store)).toEqual(await ledgerOf(fresh));
    };
    return { chain, store, followerOn, matchesChain };
  };
  const [k, n] = [take('k', 10n), take('n', 20n)];
  const v1 = [blockOf('a', 100n, []), blockOf('a', 101n, []), blockOf('a', 102n, [k])];
  // A reorg re-mines k into 101 and brings n into 102; the rescan's append of n is written, then the ingester dies
  // before it vouches for k's new place: the index has k in 102 under the old hash (unvouched) and n there under the new.
  const crashedAfterAppend = async ({ chain, store, followerOn }: Awaited<ReturnType<typeof setup>>) => {
    chain.set(v1);
    await followerOn().step();
    chain.set([blockOf('a', 100n, []), blockOf('b', 101n, [k]), blockOf('b', 102n, [n])]);
    await expect(followerOn(dyingStore(store, 1, 'after')).step()).rejects.toThrow('crashed after append 1');
    expect((await ingesterOn(store).recentBlocks()).conflicted).toBe(102n);
  };

  it('one ingester that died between a rescan\'s append and vouching for a moved place rescans from the deployment block once, then steps on from its head', async () => {
    const setting = await setup();
    const { chain, store, followerOn, matchesChain } = setting;
    await crashedAfterAppend(setting);
    const follower = followerOn();
    // The index holds the whole stream: the rescan starts at the deployment block, and neither removes nor appends.
    expect(await follower.step()).toMatchObject({ from: 100n, to: 102n, reorg: true, removed: 0, appended: 0 });
    await matchesChain();
    expect((await ingesterOn(store).recentBlocks()).conflicted).toBeNull();
    chain.set([...chain.blocks, blockOf('b', 103n, [])]);
    expect(await follower.step()).toMatchObject({ from: 102n, to: 103n, reorg: false });
    await matchesChain();
  });

  it('a conflicted block above a shorter chain\'s head has every step rescan from the deployment block until the chain regrows past it', async () => {
    const setting = await setup();
    const { chain, followerOn, matchesChain } = setting;
    await crashedAfterAppend(setting);
    chain.set(chain.blocks.slice(0, 2));
    const follower = followerOn();
    expect(await follower.step()).toMatchObject({ from: 100n, to: 101n, reorg: true, removed: 0 });
    // Nothing new, yet the whole index is rescanned again (n, in 102, stays until the chain regrows).
    expect(await follower.step()).toMatchObject({ from: 100n, to: 101n, reorg: true, removed: 0 });
    chain.set([...chain.blocks, blockOf('c', 102n, []), blockOf('c', 103n, [])]);
    expect(await follower.step()).toMatchObject({ from: 100n, to: 103n, reorg: true, removed: 1 });
    await matchesChain();
    chain.set([...chain.blocks, blockOf('c', 104n, [])]);
    expect(await follower.step()).toMatchObject({ from: 103n, to: 104n, reorg: false });
  });
});

describe('the chain follower rescanning a small index with a conflicted block from its floor', () => {
  it('a conflicted block above a shorter chain\'s head, whose rescans append logs that push the floor up, does not stop the follower with ReorgTooDeep', async () => {
    const history = new History();
    const chain = new FixedChain();
    const store = await memoryStore();
    const followerOn = (s: EventStore = store) =>
      new ChainFollower({ rpc: fakeRpc(chain), scanner: fakeScanner(chain, history, () => 0.5), ingester: ingesterOn(s, { recentLogs: 4 }), confirmations: 0, deploymentBlock: 100n, log: testLog() });
    const xs = [101n, 102n, 103n, 104n, 105n].map((b) => blockOf('a', b, [take(`x${b}`, 10n)]));
    const [k, n, y] = [take('k', 10n), take('n', 20n), take('y', 40n, 'BUY')];
    chain.set([blockOf('a', 100n, []), ...xs, blockOf('a', 106n, []), blockOf('a', 107n, [k])]);
    await followerOn().step();
    // k re-mined into 106, n new in 107; the ingester dies once n is written, before vouching for k's new place.
    const v2 = [blockOf('a', 100n, []), ...xs, blockOf('b', 106n, [k])];
    chain.set([...v2, blockOf('b', 107n, [n])]);
    await expect(followerOn(dyingStore(store, 1, 'after')).step()).rejects.toThrow('crashed after append 1');
    const { floor, conflicted } = await ingesterOn(store, { recentLogs: 4 }).recentBlocks();
    expect({ floor, conflicted }).toEqual({ floor: 104n, conflicted: 107n });
    // The chain shortens below 107, with a new log y in 106: the rescan from the floor appends it, and the floor rises.
    chain.set([...v2.slice(0, -1), blockOf('c', 106n, [k, y])]);
    const follower = followerOn();
    expect(await follower.step()).toMatchObject({ from: 104n, to: 106n, reorg: true, appended: 1 });
    expect((await ingesterOn(store, { recentLogs: 4 }).recentBlocks()).floor).toBeGreaterThan(104n);
    // The next step, the chain unchanged: the rescan must not start below the floor the index has now.
    await follower.step();
    chain.set([...chain.blocks, blockOf('c', 107n, []), blockOf('c', 108n, [])]);
    await follower.step();
    const fresh = await memoryStore();
    await ingesterOn(fresh).appendCanonical(chain.blocks.flatMap((b) => logsOf(history, b)));
    expect(await ledgerOf(store)).toEqual(await ledgerOf(fresh));
  });

  it('a reorg below the floor of an index with a conflicted block stops the follower with ReorgTooDeep, as without the conflict: a rescan from the floor would leave a dropped log counted', async () => {
    const history = new History();
    const chain = new FixedChain();
    const store = await memoryStore();
    const followerOn = (s: EventStore = store) =>
      new ChainFollower({ rpc: fakeRpc(chain), scanner: fakeScanner(chain, history, () => 0.5), ingester: ingesterOn(s, { recentLogs: 4 }), confirmations: 0, deploymentBlock: 100n, log: testLog() });
    const xs = (fork: string) => [101n, 102n, 103n, 104n, 105n].map((b) => blockOf(b < 103n ? 'a' : fork, b, [take(`x${b}`, 10n)]));
    const [k, n] = [take('k', 10n), take('n', 20n)];
    chain.set([blockOf('a', 100n, []), ...xs('a'), blockOf('a', 106n, []), blockOf('a', 107n, [k])]);
    await followerOn().step();
    chain.set([blockOf('a', 100n, []), ...xs('a'), blockOf('b', 106n, [k]), blockOf('b', 107n, [n])]);
    await expect(followerOn(dyingStore(store, 1, 'after')).step()).rejects.toThrow('crashed after append 1');
    expect(await ingesterOn(store, { recentLogs: 4 }).recentBlocks()).toMatchObject({ floor: 104n, conflicted: 107n });
    // A reorg from 103, below the floor: x103 is dropped, the blocks above get new hashes.
    chain.set([blockOf('a', 100n, []), ...xs('c').filter((b) => b.number !== 103n), blockOf('c', 103n, []), blockOf('c', 106n, [k]), blockOf('c', 107n, [n])].sort((a, b) => (a.number < b.number ? -1 : 1)));
    await expect(followerOn().step()).rejects.toThrow(ReorgTooDeep);
  });
});

describe('the chain follower when a shorter fork is served, then the longer one again', () => {
  it('one ingester whose node serves a shorter fork once (one behind a balancer, lagging a reorg) does not keep that fork\'s logs when the longer fork\'s head comes back', async () => {
    const history = new History();
    const chain = new FixedChain();
    const store = await memoryStore();
    const follower = new ChainFollower({ rpc: fakeRpc(chain), scanner: fakeScanner(chain, history, () => 0.5), ingester: ingesterOn(store), confirmations: 0, deploymentBlock: 100n, log: testLog() });
    const [t1, t2, t3, u] = [take('t1', 10n), take('t2', 20n), take('t3', 40n), take('u', 80n, 'BUY')];
    const longer = [blockOf('a', 100n, []), blockOf('a', 101n, [t1]), blockOf('a', 102n, [t2]), blockOf('a', 103n, [t3])];
    chain.set(longer);
    await follower.step();
    // The node answering now is on a shorter fork: 101 has u instead of t1, and no 102 or 103.
    chain.set([blockOf('a', 100n, []), blockOf('b', 101n, [u])]);
    await follower.step();
    // The longer fork is served again, one block on: 103 is the block the window checks, and the chain has it.
    chain.set([...longer, blockOf('a', 104n, [])]);
    await follower.step();
    const fresh = await memoryStore();
    await ingesterOn(fresh).appendCanonical(chain.blocks.flatMap((b) => logsOf(history, b)));
    expect(await ledgerOf(store)).toEqual(await ledgerOf(fresh));
    expect((await ledgerOf(store)).net).toEqual({ GME: '-7' });
  });

  it('a restart while the node serves the shorter fork does not keep that fork\'s logs when the longer fork\'s head comes back', async () => {
    const history = new History();
    const chain = new FixedChain();
    const store = await memoryStore();
    const followerOn = () => new ChainFollower({ rpc: fakeRpc(chain), scanner: fakeScanner(chain, history, () => 0.5), ingester: ingesterOn(store), confirmations: 0, deploymentBlock: 100n, log: testLog() });
    const [t1, t2, t3, u] = [take('t1', 10n), take('t2', 20n), take('t3', 40n), take('u', 80n, 'BUY')];
    const longer = [blockOf('a', 100n, []), blockOf('a', 101n, [t1]), blockOf('a', 102n, [t2]), blockOf('a', 103n, [t3])];
    chain.set(longer);
    await followerOn().step();
    chain.set([blockOf('a', 100n, []), blockOf('b', 101n, [u])]);
    await followerOn().step();
    // Restarted, its index has u in 101 (the shorter fork) and t2, t3 in 102, 103 (the longer one).
    chain.set([...longer, blockOf('a', 104n, [])]);
    await followerOn().step();
    expect((await ledgerOf(store)).net).toEqual({ GME: '-7' });
  });

  it('… nor leave out a log the rescan to the shorter fork removed, when that fork had no log of ours', async () => {
    const history = new History();
    const chain = new FixedChain();
    const store = await memoryStore();
    const followerOn = () => new ChainFollower({ rpc: fakeRpc(chain), scanner: fakeScanner(chain, history, () => 0.5), ingester: ingesterOn(store), confirmations: 0, deploymentBlock: 100n, log: testLog() });
    const longer = [blockOf('a', 100n, []), blockOf('a', 101n, [take('t1', 10n)]), blockOf('a', 102n, [take('t2', 20n)]), blockOf('a', 103n, [take('t3', 40n)])];
    chain.set(longer);
    await followerOn().step();
    chain.set([blockOf('a', 100n, []), blockOf('b', 101n, [])]);
    await followerOn().step(); // t1 removed: the stream's last event
    expect((await ledgerOf(store)).net).toEqual({ GME: '-6' });
    // Restarted when the longer fork is back: the window's top (103) checks out, and t1 is on chain again.
    chain.set([...longer, blockOf('a', 104n, [])]);
    await followerOn().step();
    expect((await ledgerOf(store)).net).toEqual({ GME: '-7' });
  });
});

describe('the chain follower under reorgs (property)', () => {
  it('for any chain of reorgs, crashes between appends and restarts, the ledger folds to the current chain', async () => {
    const plan = fc.record({
      seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      knobs: fc.record({ batchSize: fc.integer({ min: 1, max: 4 }), recentLogs: fc.integer({ min: 30, max: 60 }) }, { requiredKeys: [] }),
      crashes: fc.boolean(),
      shorten: fc.boolean(),
      racing: fc.boolean(),
      floorMark: fc.constantFrom(undefined, 'dropped' as const, 'unreadable' as const),
    });
    const only = process.env['FOLLOW_PLAN'];
    if (only !== undefined) return followerFollowsChain(JSON.parse(only) as FollowPlan);
    await fc.assert(fc.asyncProperty(plan, followerFollowsChain), { numRuns: RUNS });
  }, 300_000);
});
