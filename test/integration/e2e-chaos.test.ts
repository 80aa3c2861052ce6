/**
 * End-to-end chaos: the real service (a child process, as in e2e.test.ts) follows anvil through the
 * flaky RPC proxy (500s, dropped connections, delays, refused ranges) and hedges at the Schwab
 * simulator with its faults on (500s, ambiguous placements, 429s, timeouts, dropped polls, rejected
 * and partly filled orders), while the test sends trades, reorganises the chain under the ledger
 * (anvil_reorg dropping or moving fills it has ingested and maybe hedged, anvil_rollback), sends
 * dropped transactions of ours again as a mempool does (eth_sendRawTransaction of the signed
 * transaction: right after the reorg, once the ledger has removed them, or after the next restart;
 * some dropped again by a reorg right after, some never sent again), and SIGKILLs and restarts the
 * service at seeded random moments. Once everything settles:
 *
 * - the orderbook stream holds every log of the canonical chain once and nothing else live: each
 *   log it recorded is either on chain or compensated (OrderbookLogRemoved) once; every event id
 *   is unique, and each log's generations alternate recorded, removed, recorded… starting with
 *   recorded, each removal naming the recording before it and carrying its content, though a
 *   recording may have other content than the one before (docs/chain-ingestion.md, "Reorgs", steps 5, 6);
 * - per symbol, the ledger's net minus what the simulator filled equals the onchain exposure of the
 *   canonical chain, computed from the fills the test sent whose transactions the chain still has,
 *   and equal to a fresh ingestion of the chain from scratch (as chain-reorg.test.ts compares);
 * - the simulator holds exactly one order per hedge command, each command is linked to exactly one
 *   order, of its side, quantity and symbol, and the ledger records what the simulator filled;
 * - every symbol ends with |net| < 1, nothing pending, nothing halted.
 *
 * The reorgs stay within what docs/chain-ingestion.md says is handled: a few blocks deep (never the
 * deployment's blocks), at most one re-mined transaction of ours per block, maybe in another block
 * than before (past a fill another account sends into a free block of the reorg), and maybe behind
 * another account's fill in its block (listed first in anvil_reorg). Transactions sent again go each
 * alone into a block, or all into one behind another account's fill (its higher tip puts it first).
 * Behind another log, ours have their logs at other log indexes: a place (transaction, log index) the
 * ledger holds, live or removed, now has another of their logs (a clear's ClearV2 where its AfterClear
 * was), which the ledger replaces ("Reorgs", step 6). Every run, whatever its seed, ends with one such
 * clear: recorded, then re-mined one index higher. The service must never stop on its own: if it does,
 * the test fails quoting the error it logged (and says when it is ReorgTooDeep or LogConflict, a
 * documented stop).
 *
 * CHAOS_SEED=<n> replays another sequence; CHAOS_RUNS=<n> runs n seeds from it (a longer campaign);
 * CHAOS_KILLS=<n> changes the kills per run (default 12); CHAOS_WEBSOCKET=1 has the ingester on anvil's ws://
 * endpoint (new heads wake it), the flaky proxy as its fallback; E2E_KEEP=1 keeps every service's log.
 */
import { describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { encodeFunctionData, type Hex } from 'viem';
import * as D from '../../src/domain/decimal.ts';
import { logEventId } from '../../src/domain/ids.ts';
import { streams } from '../../src/domain/events.ts';
import { AFTER_CLEAR_TOPIC, CLEAR_V2_TOPIC } from '../../src/domain/orderbook-abi.ts';
import { openStore } from '../../src/eventstore/url.ts';
import { IngesterService } from '../../src/chain/ingester-service.ts';
import { orderbookAbi, takeArgs, type DevTokenName, type Fill, type ReorgTx } from '../../src/chain/devnet/index.ts';
import type { Fault, Script } from '../../src/broker/schwab-sim/index.ts';
import { mulberry32 } from '../../src/seeded-random.ts';
import type { AccumulatorConfig } from '../../projections/accumulator.ts';
import { E2eStack, EQUITY_TOKENS, OUR_OWNER, SYMBOLS, TAKER, fillOf, type ServiceProcess } from '../support/e2e-stack.ts';
import { startRpcProxy, type RpcProxy } from '../support/chain-proxy.ts';
import { storedNet } from '../support/chain-fixture.ts';
import { testLog } from '../support/test-log.ts';
import { until } from '../support/until.ts';

const SEED = Number(process.env['CHAOS_SEED'] ?? 20261129);
const RUNS = Number(process.env['CHAOS_RUNS'] ?? 1);
const KILLS = Number(process.env['CHAOS_KILLS'] ?? 12);
const KEEP = process.env['E2E_KEEP'] === '1';
const WEBSOCKET = process.env['CHAOS_WEBSOCKET'] === '1';

interface Position { symbol: string; net: string; pending: unknown; halted: boolean }
interface Hedge { commandId: string; symbol: string; side: string; quantity: string; status: string; filledQuantity: string | null }
interface Status { head: string | null; follower: { caughtUp: boolean }; checkpoints: Record<string, { caughtUp: boolean }> }

/** Faults the simulator answers with, each call drawing from its seeded generator. */
const BROKER_FAULTS: readonly { endpoint: 'place' | 'getOrder' | 'listOrders'; fault: Fault; probability: number }[] = [
  { endpoint: 'place', fault: { kind: 'status', status: 500 }, probability: 0.08 },
  { endpoint: 'place', fault: { kind: 'drop', applied: true }, probability: 0.08 },
  { endpoint: 'place', fault: { kind: 'status', status: 503, applied: true }, probability: 0.05 },
  { endpoint: 'place', fault: { kind: 'status', status: 429, retryAfterSeconds: 0 }, probability: 0.05 },
  { endpoint: 'place', fault: { kind: 'timeout', applied: true }, probability: 0.04 },
  { endpoint: 'getOrder', fault: { kind: 'status', status: 500 }, probability: 0.1 },
  { endpoint: 'getOrder', fault: { kind: 'drop' }, probability: 0.05 },
  { endpoint: 'listOrders', fault: { kind: 'status', status: 500 }, probability: 0.1 },
  { endpoint: 'listOrders', fault: { kind: 'gzip', applied: true }, probability: 0.05 },
];
/**
 * Fees above what our signed transactions pay (100 and 200 gwei): the other account's fill goes first in a block it shares
 * with ours, whether anvil orders the block by tip (mining a pool) or as listed (anvil_reorg).
 */
const OUTBID = { maxPriorityFeePerGas: '0x174876e800', maxFeePerGas: '0x2e90edd000' } as const;
/** Lifecycles for the next order now and then: a rejection (the fold re-arms) or a fill in two parts. */
const SCRIPTS: readonly Script[] = [
  { kind: 'asyncReject', afterMs: 0 },
  { kind: 'partialThenFill', first: 1, afterMs: 300 },
];

/** One fill of our order: its symbol and how it moves the onchain exposure (received equity: +). */
interface OurFill { readonly symbol: string; readonly delta: D.Decimal }

interface Stats {
  trades: number; ours: number; reorgs: number; rollbacks: number; dropped: number; moved: number; insertedByOthers: number; followUps: number; kills: number; sigterms: number; scripts: number;
  /** Dropped transactions of ours sent again: in all, right after their reorg, after a restart; dropped again by a later reorg; never sent again. */
  resent: number; resentAtOnce: number; resentAfterRestart: number; droppedAgain: number; redrops: number; abandoned: number;
  /** Our transactions re-mined or sent again behind another account's fill in their block: their logs one or more indexes higher. */
  behindOthers: number;
}

/** A transaction of ours a reorg or rollback dropped, signed: what eth_sendRawTransaction sends again (anvil forgets it once dropped). */
interface DroppedTx { readonly hash: Hex; readonly raw: Hex; readonly nonce: number }
/** When dropped transactions are sent again: once the ledger holds none of their logs live, or after the service's next restart. */
type ResendWhen = 'removed' | 'restart';

/** The error the service logged before it stopped on its own, named for the report. */
function whyStopped(service: ServiceProcess): string {
  const lines = service.logTail.split('\n').filter((l) => /"level":(50|60)/.test(l));
  const last = lines.at(-1) ?? '(no error logged)';
  const documented = /ReorgTooDeep|LogConflict/.test(last) ? ' (a documented stop: see docs/chain-ingestion.md, "When ingestion stops instead")' : '';
  return `the service stopped on its own${documented}: ${last}\n--- service log tail ---\n${service.logTail}`;
}

async function chaosRun(seed: number): Promise<void> {
  const random = mulberry32(seed);
  const stack = await E2eStack.start({ simSeed: seed });
  let proxy: RpcProxy | undefined;
  const stats: Stats = {
    trades: 0, ours: 0, reorgs: 0, rollbacks: 0, dropped: 0, moved: 0, insertedByOthers: 0, followUps: 0, kills: 0, sigterms: 0, scripts: 0,
    resent: 0, resentAtOnce: 0, resentAfterRestart: 0, droppedAgain: 0, redrops: 0, abandoned: 0, behindOthers: 0,
  };
  try {
    const { anvil, deployment, trader, sim } = stack;
    proxy = await startRpcProxy(anvil.rpcUrl, seed, { error500: 0.05, drop: 0.03, delay: 0.15, delayMs: 80, maxLogRange: 8 });
    for (const { endpoint, fault, probability } of BROKER_FAULTS) sim.control.injectFault(endpoint, fault, { probability });
    const env = {
      ...(WEBSOCKET ? { LEDGER_RPC_URL: anvil.wsUrl, LEDGER_RPC_URLS: proxy.url } : { LEDGER_RPC_URL: proxy.url }),
      LEDGER_MAX_BLOCK_RANGE: '16',
      LEDGER_RPC_DEADLINE_MS: '60000',
      // The simulator lists an ambiguous placement's order at once: a short settle keeps the run short.
      LEDGER_PLACEMENT_SETTLE_MS: '1000',
      SCHWAB_REQUEST_TIMEOUT_MS: '1500',
      // Rejections are re-armed, never halted: every symbol must end hedged.
      LEDGER_MAX_CONSECUTIVE_FAILURES: '1000',
    };
    const dev = (await anvil.request<Hex[]>('eth_accounts'))[0]!.toLowerCase();
    // Reorgs never reach the deployment's blocks (the contracts would go with them).
    const floorBlock = Number(await anvil.request<Hex>('eth_blockNumber'));
    const fills = new Map<string, OurFill[]>();
    const ourFill = (fill: Fill, symbol: string): OurFill => ({ symbol, delta: fill.side === 'buy' ? D.fromUnits(fill.shares, 18) : D.neg(D.fromUnits(fill.shares, 18)) });

    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const randomFill = (owner: typeof OUR_OWNER) => {
      const symbol = pick(SYMBOLS);
      const token: DevTokenName = pick(EQUITY_TOKENS[symbol]!);
      const shares = D.div(D.fromBigInt(BigInt(5 + Math.floor(random() * 145))), D.fromBigInt(100n)); // 0.05 to 1.49
      return { fill: fillOf(owner, random() < 0.5 ? 'sell' : 'buy', token, symbol, shares), symbol };
    };

    /** A random fill of our order by another account (one TakeOrderV2 log): the request to send from it, and what it moves. */
    const otherTake = () => {
      const { fill, symbol } = randomFill(OUR_OWNER);
      const data = encodeFunctionData({ abi: orderbookAbi, functionName: 'takeOrder', args: takeArgs(deployment, fill) });
      return { request: { from: TAKER, to: deployment.orderbook, data, ...OUTBID }, fill: ourFill(fill, symbol) };
    };
    type Receipt = { status: Hex; blockNumber: Hex; transactionIndex: Hex };
    const mined = (hash: Hex, what: string) => until(() => anvil.request<Receipt | null>('eth_getTransactionReceipt', [hash]).then((r) => r ?? undefined), what, 10_000);

    /** Another account's fill of our order, sent from it: our account's next nonce stays free for the dropped transactions. */
    const takeByOther = async () => {
      const { request, fill } = otherTake();
      const hash = await anvil.request<Hex>('eth_sendTransaction', [request]);
      const receipt = await mined(hash, 'the other account\'s take mined');
      expect(receipt.status, 'the other account\'s take succeeded').toBe('0x1');
      fills.set(hash, [fill]);
      stats.trades++;
    };

    /** A clear with us as bob (ClearV2 then AfterClear), the other account's order as alice. */
    const clearOurs = async (fill: Fill, symbol: string) => {
      const alice = { ...fill, owner: TAKER, side: fill.side === 'sell' ? 'buy' : 'sell' } as const;
      const { transactionHash } = await trader.clear({ alice, bob: fill });
      fills.set(transactionHash, [ourFill(fill, symbol)]);
      return transactionHash;
    };

    /** A trade like the demo's: mostly takes of our order, some clears with us as bob, some other owners' takes. */
    const trade = async () => {
      // Dropped transactions of ours wait to be sent again: a new one of our account would take their nonce.
      if (resend !== undefined) return takeByOther();
      if (random() < 0.1) {
        sim.control.setScript(pick(SCRIPTS), { next: 1 });
        stats.scripts++;
      }
      const { fill, symbol } = randomFill(OUR_OWNER);
      const roll = random();
      stats.trades++;
      if (roll < 0.7) {
        fills.set((await trader.take(fill)).transactionHash, [ourFill(fill, symbol)]);
      } else if (roll < 0.9) {
        await clearOurs(fill, symbol);
      } else {
        await trader.take({ ...fill, owner: TAKER });
        return;
      }
      stats.ours++;
    };

    /** The ledger has recorded the chain's newest log of the orderbook (when the service is up): a reorg then takes back ingested fills. */
    const ingested = async (service: ServiceProcess, log?: { transactionHash: Hex; logIndex: Hex }, timeoutMs = 5_000): Promise<boolean> => {
      const logs = await anvil.request<{ transactionHash: Hex; logIndex: Hex }[]>('eth_getLogs', [{ address: deployment.orderbook, fromBlock: `0x${floorBlock.toString(16)}`, toBlock: 'latest' }]);
      const last = log ?? logs.at(-1);
      if (last === undefined) return true;
      const id = logEventId(deployment.chainId, last.transactionHash, Number(last.logIndex));
      const recorded = async () => (await stack.events({ prefixes: ['orderbook-'] })).some((e) => e.id === id);
      await until(async () => !service.alive || (await recorded()), 'the newest log ingested', timeoutMs, 100).catch(() => undefined);
      return recorded();
    };

    /** After a shift: the other account's fill to wait for before the second reorg ('next': the chain's newest log). */
    let followUp: Hex | 'next' | undefined;
    const rawTx = (hash: Hex) => anvil.request<Hex>('eth_getRawTransactionByHash', [hash]);
    type Block = { transactions: { hash: Hex; from: string; nonce: Hex }[] };
    const blockAt = (n: number) => anvil.request<Block>('eth_getBlockByNumber', [`0x${n.toString(16)}`, true]);
    /** Our account's transactions in the blocks from..to, signed, read before a reorg or rollback drops them. */
    const oursIn = async (from: number, to: number): Promise<DroppedTx[]> => {
      const blocks = await Promise.all(Array.from({ length: to - from + 1 }, (_, i) => blockAt(from + i)));
      const txs = blocks.flatMap((b) => b.transactions).filter((tx) => tx.from.toLowerCase() === dev);
      return Promise.all(txs.map(async (tx) => ({ hash: tx.hash, raw: await rawTx(tx.hash), nonce: Number(tx.nonce) })));
    };

    // ---- dropped transactions of ours sent again, as a mempool does after a reorg ----
    /** Dropped transactions waiting to be sent again (in nonce order: the next nonce of our account is the first one's). */
    let resend: { txs: DroppedTx[]; when: ResendWhen; restarts: number } | undefined;
    /** Our transactions sent again at least once: one of them dropped once more counts as dropped again. */
    const sentAgain = new Set<Hex>();
    /** After a resend: the number of blocks on top holding the transactions sent again (and no other of ours), for a reorg to drop them again. */
    let redrop: number | undefined;
    let restarts = 0;

    /**
     * Sends the waiting transactions again, in nonce order: each mined alone into a new block (automine), or all of them in
     * one block behind another account's fill (its higher tip puts it first), so their logs sit at other log indexes than
     * the ledger had them at. Returns how many blocks on top hold them.
     */
    const sendAgain = async (): Promise<number> => {
      const txs = resend?.txs ?? [];
      resend = undefined;
      if (txs.length === 0) return 0;
      const sendRaw = async (tx: DroppedTx) => {
        const hash = await anvil.request<Hex>('eth_sendRawTransaction', [tx.raw]);
        expect(hash, 'a transaction sent again keeps its hash').toBe(tx.hash);
        sentAgain.add(tx.hash);
      };
      stats.resent += txs.length;
      if (random() >= 0.4) {
        for (const tx of txs) {
          await sendRaw(tx);
          await mined(tx.hash, 'a transaction sent again mined');
        }
        return txs.length;
      }
      const take = otherTake();
      let first: Hex;
      await anvil.request('evm_setAutomine', [false]);
      try {
        first = await anvil.request<Hex>('eth_sendTransaction', [take.request]);
        for (const tx of txs) await sendRaw(tx);
        await anvil.request('anvil_mine', ['0x1']);
      } finally {
        await anvil.request('evm_setAutomine', [true]);
      }
      fills.set(first, [take.fill]);
      const other = await mined(first, 'the other account\'s fill mined');
      expect(other.transactionIndex, 'the other account\'s fill first in its block').toBe('0x0');
      for (const tx of txs) expect((await mined(tx.hash, 'a transaction sent again mined')).blockNumber, 'sent again into the block of the other account\'s fill').toBe(other.blockNumber);
      stats.trades++;
      stats.behindOthers += txs.length;
      return 1;
    };

    /**
     * Our transactions a reorg or rollback just dropped: sent again right away (before the ledger saw the reorg), later (once
     * the ledger has removed them, or after the next restart), or never; added to those already waiting, in nonce order.
     */
    const dropped = async (txs: readonly DroppedTx[], canResendAtOnce: boolean) => {
      if (txs.length === 0) return;
      stats.droppedAgain += txs.filter((tx) => sentAgain.has(tx.hash)).length;
      const waiting = [...(resend?.txs ?? []), ...txs].sort((a, b) => a.nonce - b.nonce);
      const roll = random();
      if (roll < 0.2) {
        // Never sent again: our account trades on from the chain's nonce.
        stats.abandoned += waiting.length;
        resend = undefined;
      } else if (roll < 0.45 && canResendAtOnce) {
        resend = { txs: waiting, when: 'removed', restarts };
        stats.resentAtOnce += waiting.length;
        const blocks = await sendAgain();
        if (random() < 0.3) redrop = blocks;
      } else {
        resend = { txs: waiting, when: random() < 0.6 ? 'removed' : 'restart', restarts };
      }
    };

    /** The ledger holds no log of these transactions live (every one recorded was removed since): checked on the stream. */
    const noneLive = async (hashes: ReadonlySet<Hex>) => {
      const latest = new Map<string, string>();
      for (const e of await stack.events({ prefixes: ['orderbook-'] })) {
        if ((e.type === 'OrderbookLogRecorded' || e.type === 'OrderbookLogRemoved') && hashes.has(e.data.transactionHash as Hex)) latest.set(`${e.data.transactionHash}:${e.data.logIndex}`, e.type);
      }
      return [...latest.values()].every((type) => type === 'OrderbookLogRemoved');
    };

    /** The waiting transactions are sent again when their moment has come: the ledger removed them, or the service restarted. */
    const resendDue = async (): Promise<boolean> => {
      if (resend === undefined) return false;
      if (resend.when === 'restart') return restarts > resend.restarts;
      const hashes = new Set(resend.txs.map((tx) => tx.hash));
      await until(async () => !current().alive || (await noneLive(hashes)), 'the dropped transactions removed from the ledger', 5_000, 100).catch(() => undefined);
      return true;
    };

    /** Fills of our order by another account listed for the next anvil_reorg (otherIn), counted once mined (reorgWith). */
    const listedOthers = new Map<ReorgTx['tx'], OurFill>();
    const otherIn = (blockOffset: number): ReorgTx => {
      const { request, fill } = otherTake();
      listedOthers.set(request, fill);
      return { tx: request, blockOffset };
    };
    /** anvil_reorg of the last `depth` blocks, mining `txs` into them; returns the other account's transactions it mined, in chain order. */
    const reorgWith = async (depth: number, txs: readonly ReorgTx[]): Promise<Hex[]> => {
      const head = Number(await anvil.request<Hex>('eth_blockNumber'));
      // In block order (a stable sort keeps each block's as listed): anvil_reorg gives the other account's requests their
      // nonces in the order listed, so one listed after a later block's would be invalid and silently left out.
      const sorted = [...txs].sort((x, y) => x.blockOffset - y.blockOffset);
      const listed = sorted.flatMap((t) => listedOthers.get(t.tx) ?? []);
      listedOthers.clear();
      await anvil.reorg(depth, sorted);
      stats.reorgs++;
      if (listed.length === 0) return [];
      const blocks = await Promise.all(Array.from({ length: depth }, (_, i) => blockAt(head - depth + 1 + i)));
      const others = blocks.flatMap((b) => b.transactions.filter((tx) => tx.from.toLowerCase() === TAKER).map((tx) => tx.hash));
      expect(others, 'the other account\'s fills were mined by the reorg').toHaveLength(listed.length);
      others.forEach((hash, i) => fills.set(hash, [listed[i]!]));
      for (const b of blocks) {
        if (b.transactions.some((tx) => tx.from.toLowerCase() === TAKER)) expect(b.transactions[0]!.from.toLowerCase(), 'the other account\'s fill first in its block').toBe(TAKER);
      }
      return others;
    };

    /**
     * anvil_reorg of the last blocks: our transactions there dropped, or a prefix of them re-mined (maybe elsewhere, maybe
     * behind a fill of our order by another account in their block), maybe another such fill in a block of its own.
     */
    const reorg = async () => {
      const head = Number(await anvil.request<Hex>('eth_blockNumber'));
      const maxDepth = Math.min(4, head - floorBlock);
      if (maxDepth < 1) return trade();
      const depth = 1 + Math.floor(random() * maxDepth);
      if (random() < 0.25) {
        const rollback = Math.min(depth, 2);
        const gone = await oursIn(head - rollback + 1, head);
        await anvil.rollback(rollback);
        stats.rollbacks++;
        stats.dropped += gone.length;
        await dropped(gone, true);
        return;
      }
      const blocks = await Promise.all(Array.from({ length: depth }, (_, i) => blockAt(head - depth + 1 + i)));
      const ours = await Promise.all(
        blocks.flatMap((b, offset) => b.transactions.filter((tx) => tx.from.toLowerCase() === dev).map(async (tx) => ({ hash: tx.hash, offset, raw: await rawTx(tx.hash), nonce: Number(tx.nonce) }))),
      );
      // Re-mined in nonce order (a later one without the earlier is invalid), at most one of ours per block (the reorg's blocks
      // may hold several, sent again together: no more than `depth` of them go back). Either a random prefix into random
      // blocks, or (shift) the first one alone into the reorg's last block, above the other account's fill, then dropped by a
      // second reorg right after: a log re-mined past a new log, then gone.
      const shift = depth >= 3 && ours.length > 0 && ours[0]!.offset < depth - 2 && random() < 0.5;
      const keep = shift ? 1 : random() < 0.35 ? 0 : Math.floor(random() * (Math.min(ours.length, depth) + 1));
      const offsets = shift ? [depth - 1] : Array.from({ length: depth }, (_, i) => i).sort(() => random() - 0.5).slice(0, keep).sort((a, b) => a - b);
      const kept = ours.slice(0, keep);
      stats.dropped += ours.length - keep;
      stats.moved += kept.filter((k, i) => k.offset !== offsets[i]).length;
      // Another account's fills of our order: maybe one in front of each transaction of ours re-mined (in its block, listed
      // first), whose logs then sit one index higher than the ledger has them (a clear's ClearV2 where its AfterClear was:
      // docs/chain-ingestion.md, "Reorgs", step 6), and maybe one alone in a block none of ours is re-mined into.
      const txs = kept.flatMap((k, i): ReorgTx[] => {
        const ourTx = { tx: k.raw, blockOffset: offsets[i]! };
        if (random() >= 0.4) return [ourTx];
        stats.behindOthers++;
        return [otherIn(offsets[i]!), ourTx];
      });
      const free = Array.from({ length: depth }, (_, i) => i).filter((i) => !offsets.includes(i) && (!shift || i > ours[0]!.offset));
      if (free.length > 0 && (shift || random() < 0.6)) {
        txs.push(otherIn(pick(free)));
        stats.insertedByOthers++;
      }
      const others = await reorgWith(depth, txs);
      // The second reorg waits for the ledger to have the newest of the other account's fills: it has then reconciled the first.
      followUp = shift ? (others.at(-1) ?? 'next') : undefined;
      // The dropped ones may go back into the chain, but not before the shifted one's second reorg.
      await dropped(ours.slice(keep), !shift);
    };

    // ---- the chaos: trades and reorgs on one side, kills and restarts on the other ----
    let service = await stack.spawn(env);
    let killing = true;
    const current = () => service;
    const chain = (async () => {
      while (killing) {
        if (followUp !== undefined) {
          await ingested(current(), followUp === 'next' ? undefined : { transactionHash: followUp, logIndex: '0x0' });
          followUp = undefined;
          const head = Number(await anvil.request<Hex>('eth_blockNumber'));
          const gone = await oursIn(head, head);
          await anvil.reorg(1);
          stats.reorgs++;
          stats.followUps++;
          stats.dropped += gone.length;
          await dropped(gone, true);
        } else if (redrop !== undefined) {
          // The transactions just sent again, dropped again (after the ledger recorded them, or before).
          if (random() < 0.6) await ingested(current());
          const depth = redrop;
          redrop = undefined;
          const head = Number(await anvil.request<Hex>('eth_blockNumber'));
          const gone = await oursIn(head - depth + 1, head);
          await anvil.reorg(depth);
          stats.reorgs++;
          stats.redrops++;
          stats.dropped += gone.length;
          await dropped(gone, true);
        } else if (await resendDue()) {
          if (resend?.when === 'restart') stats.resentAfterRestart += resend.txs.length;
          const blocks = await sendAgain();
          if (random() < 0.3) redrop = blocks;
        } else if (random() < 0.15) {
          await ingested(current());
          await reorg();
        } else await trade();
        await sleep(30 + random() * 70);
      }
    })();
    chain.catch(() => undefined); // awaited below
    const killRandom = mulberry32(seed + 1);
    try {
      for (let round = 1; stats.kills < KILLS; round++) {
        const started = await service.logged('"level":', 30_000);
        if (!started) throw new Error(service.alive ? `service ${round} logged nothing in 30 s` : whyStopped(service));
        await sleep(killRandom() * 2_000);
        if (!service.alive) throw new Error(whyStopped(service));
        if (round % 5 === 0) {
          const exited = await service.stop('SIGTERM');
          expect(exited, `SIGTERM in round ${round}:\n${service.logTail}`).toMatchObject({ code: 0, signal: null });
          stats.sigterms++;
        } else {
          const exited = await service.stop('SIGKILL');
          if (exited.signal !== 'SIGKILL') throw new Error(whyStopped(service));
          stats.kills++;
        }
        service = await stack.spawn(env);
        restarts++;
      }
    } finally {
      killing = false;
      await chain;
    }
    // Transactions still waiting are sent again now (our account's last trade would take their nonce).
    if (resend !== undefined) await sendAgain();

    // Whatever the seed, once: a clear of ours the ledger has recorded, re-mined by a reorg behind another account's fill,
    // so its ClearV2 lands where its AfterClear was and its AfterClear one index higher (asserted on the stream below).
    const shifted = await clearOurs(fillOf(OUR_OWNER, 'sell', 'tAAPL', 'AAPL', D.parse('0.5')), 'AAPL');
    stats.ours++;
    if (!(await ingested(service, { transactionHash: shifted, logIndex: '0x1' }, 30_000))) {
      throw new Error(service.alive ? `the ledger did not record clear ${shifted} in 30 s\n${service.logTail}` : whyStopped(service));
    }
    await reorgWith(1, [otherIn(0), { tx: await rawTx(shifted), blockOffset: 0 }]);
    stats.behindOthers++;

    // The last word: a trade of ours after the last kill, then blocks past any rollback's old head.
    const last = fillOf(OUR_OWNER, 'buy', 'tGME', 'GME', D.parse('2'));
    fills.set((await trader.take(last)).transactionHash, [ourFill(last, 'GME')]);
    stats.ours++;
    await anvil.request('anvil_mine', ['0x3']);

    // ---- settled: the stream matches the chain, nothing open, every symbol hedged ----
    const onchainLogs = async () =>
      (await anvil.request<{ transactionHash: Hex; logIndex: Hex }[]>('eth_getLogs', [{ address: deployment.orderbook, fromBlock: `0x${deployment.deploymentBlock.toString(16)}`, toBlock: 'latest' }]));
    const onchainIds = async () => (await onchainLogs()).map((l) => logEventId(deployment.chainId, l.transactionHash, Number(l.logIndex)));
    const liveIds = async () => {
      const entries = await stack.events({ prefixes: ['orderbook-'] });
      const removed = new Set(entries.flatMap((e) => (e.type === 'OrderbookLogRemoved' ? [e.data.logId] : [])));
      // By the log's own id: a log recorded again after a removal has another event id (docs/chain-ingestion.md, "Reorgs").
      return entries.flatMap((e) => (e.type === 'OrderbookLogRecorded' && !removed.has(e.id) ? [logEventId(e.data.chainId, e.data.transactionHash, Number(e.data.logIndex))] : []));
    };
    let unsettled = 'not checked yet';
    const settled = await until(
      async () => {
        if (!service.alive) return { stopped: true as const };
        // The API's answers are its fold's, which follows the store: read at one head it had folded, before and after.
        const before = await service.get<Status>('/status');
        const [positions, hedges] = await Promise.all([service.get<Position[]>('/positions'), service.get<Hedge[]>('/hedges')]);
        const after = await service.get<Status>('/status');
        const folded = before.follower.caughtUp && after.follower.caughtUp && before.head === after.head && Object.values(after.checkpoints).every((c) => c.caughtUp);
        const open = hedges.some((h) => h.status !== 'filled' && h.status !== 'failed') || positions.some((p) => p.pending !== null);
        const unhedged = positions.some((p) => D.gte(D.abs(D.parse(p.net)), D.ONE));
        const [live, chainIds] = await Promise.all([liveIds(), onchainIds()]);
        const caughtUp = live.length === chainIds.length && new Set([...live, ...chainIds]).size === chainIds.length;
        unsettled = [
          ...(caughtUp ? [] : [`live logs not on chain: ${live.filter((id) => !chainIds.includes(id)).join(', ') || 'none'}; on chain, not live: ${chainIds.filter((id) => !live.includes(id)).join(', ') || 'none'}`]),
          ...(folded ? [] : ['the API or the accumulator behind the store']),
          ...(open ? ['hedges open'] : []),
          ...positions.filter((p) => D.gte(D.abs(D.parse(p.net)), D.ONE)).map((p) => `${p.symbol} net ${p.net}`),
        ].join('; ');
        return caughtUp && folded && !open && !unhedged && { stopped: false as const, positions, hedges };
      },
      'the ledger to settle: the stream matching the chain, every hedge done, every symbol within a share',
      60_000,
      250,
    ).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\nnot settled: ${unsettled}\n--- service log tail ---\n${service.logTail}`);
    });
    if (settled.stopped) throw new Error(whyStopped(service));
    const { positions, hedges } = settled;

    // Every log the stream recorded once; removals only of recorded logs, once each; what is live is the chain.
    const entries = await stack.events({ prefixes: ['orderbook-'] });
    expect(entries[0]?.stream).toBe(streams.orderbook(deployment.chainId, deployment.orderbook));
    const recordedIds = entries.flatMap((e) => (e.type === 'OrderbookLogRecorded' ? [e.id] : []));
    const removedIds = entries.flatMap((e) => (e.type === 'OrderbookLogRemoved' ? [e.data.logId] : []));
    expect(new Set(recordedIds).size).toBe(recordedIds.length);
    expect(new Set(removedIds).size).toBe(removedIds.length);
    for (const id of removedIds) expect(recordedIds).toContain(id);
    expect(new Set(await liveIds())).toEqual(new Set(await onchainIds()));
    expect(removedIds.length, 'the reorgs took back fills the ledger had recorded').toBeGreaterThan(0);
    // Every event id of the stream once, whichever generation it is of.
    const eventIds = entries.map((e) => e.id);
    expect(eventIds.filter((id, i) => eventIds.indexOf(id) !== i), 'event ids of the orderbook stream that repeat').toEqual([]);
    // Each log's generations (by the log's own id) alternate recorded, removed, recorded…, starting recorded; each removal
    // names the recording before it and carries its content. That holds when a reorg moved the log's transaction to other
    // log indexes, so the chain has other content at that id: the stored log is removed, the chain's recorded again
    // (docs/chain-ingestion.md, "Reorgs", step 6); a removal undoing another content than it names would undo the wrong fill.
    const generations = new Map<string, { type: string; id: string; logId?: string; topic0: string; content: string }[]>();
    for (const e of entries) {
      if (e.type !== 'OrderbookLogRecorded' && e.type !== 'OrderbookLogRemoved') continue;
      const key = logEventId(e.data.chainId, e.data.transactionHash, Number(e.data.logIndex));
      const content = { topic0: e.data.topics[0] ?? '', content: `${e.data.address} ${e.data.topics.join()} ${e.data.data}` };
      generations.set(key, [...(generations.get(key) ?? []), { type: e.type, id: e.id, ...content, ...(e.type === 'OrderbookLogRemoved' && { logId: e.data.logId }) }]);
    }
    for (const [key, gens] of generations) {
      const shown = gens.map((g) => (g.type === 'OrderbookLogRecorded' ? 'recorded' : 'removed'));
      expect(shown, `the generations of log ${key}`).toEqual(shown.map((_, i) => (i % 2 === 0 ? 'recorded' : 'removed')));
      gens.forEach((g, i) => {
        if (g.type !== 'OrderbookLogRemoved') return;
        expect(g.logId, `removal ${i} of log ${key} names the recording before it`).toBe(gens[i - 1]!.id);
        expect(g.content, `removal ${i} of log ${key} carries the content of the recording it names`).toBe(gens[i - 1]!.content);
      });
    }
    const recordedAgain = [...generations.values()].filter((gens) => gens.length > 2).length;
    const recordings = [...generations.values()].map((gens) => gens.filter((g) => g.type === 'OrderbookLogRecorded'));
    const otherContent = recordings.filter((recs) => new Set(recs.map((g) => g.content)).size > 1).length;
    const clearOntoAfterClear = recordings.filter((recs) => recs.some((g, i) => g.topic0 === CLEAR_V2_TOPIC && recs.slice(0, i).some((h) => h.topic0 === AFTER_CLEAR_TOPIC))).length;
    expect(clearOntoAfterClear, 'logs whose id the ledger recorded an AfterClear at, then a ClearV2 (a clear re-mined one log index higher)').toBeGreaterThan(0);

    // Onchain exposure per symbol: the fills the test sent whose transactions the chain still has.
    const canonicalTxs = new Set<string>((await onchainLogs()).map((l) => l.transactionHash));
    const expected = new Map<string, D.Decimal>(SYMBOLS.map((s) => [s, D.ZERO]));
    for (const [hash, ofTx] of fills) {
      if (!canonicalTxs.has(hash)) continue;
      for (const f of ofTx) expected.set(f.symbol, D.add(expected.get(f.symbol)!, f.delta));
    }
    // … and the same from a fresh ingestion of the chain, as chain-reorg.test.ts compares.
    const fold: AccumulatorConfig = { fills: { chainId: deployment.chainId, orderbook: deployment.orderbook.toLowerCase(), owners: new Set([OUR_OWNER]) }, maxConsecutiveFailures: 3, brokerSymbols: {} };
    const fresh = await openStore(`sqlite:${join(stack.dir, 'canonical.db')}`);
    let canonical: Record<string, string>;
    try {
      const ingester = await IngesterService.start(
        fresh,
        { chainId: deployment.chainId, orderbook: deployment.orderbook.toLowerCase(), rpcUrls: [anvil.rpcUrl], deploymentBlock: deployment.deploymentBlock, confirmations: 0, pollIntervalMs: 50, concurrency: 4, maxBlockRange: 64, deadlineMs: 10_000 },
        testLog('canonical'),
      );
      try {
        await ingester.catchUp();
      } finally {
        ingester.close();
      }
      canonical = await storedNet(fresh, fold);
    } finally {
      await fresh.close();
    }
    const orders = sim.control.orders();
    const brokerFilled = (symbol: string) => D.sum(orders.filter((o) => o.symbol === symbol).map((o) => (o.instruction === 'BUY' ? D.parse(o.filledQuantity) : D.neg(D.parse(o.filledQuantity)))));
    for (const symbol of SYMBOLS) {
      const net = positions.find((p) => p.symbol === symbol)?.net ?? '0';
      const onchain = D.format(D.sub(D.parse(net), brokerFilled(symbol)));
      const sent = D.format(expected.get(symbol)!);
      expect(onchain, `${symbol}: the ledger's net ${net} minus the broker's fills, against a fresh ingestion of the canonical chain (the fills the test sent: ${sent})`).toBe(canonical[symbol] ?? '0');
      expect(onchain, `${symbol}: the ledger's net ${net} minus the broker's fills, against the fills the test sent`).toBe(sent);
    }

    // Exactly one broker order per command, each linked to exactly one command, matching it; the ledger has what the broker filled.
    const commands = await stack.commands();
    expect(sim.control.counters().ordersPlaced).toBe(commands.length);
    expect(orders).toHaveLength(commands.length);
    const linked = new Map<string, string[]>();
    for (const e of await stack.events({ prefixes: ['hedgeorder-'] })) {
      if (e.type === 'HedgeOrderPlaced') linked.set(e.data.commandId, [...(linked.get(e.data.commandId) ?? []), e.data.brokerOrderId]);
    }
    const byId = new Map(orders.map((o) => [o.orderId, o]));
    for (const c of commands) {
      expect(linked.get(c.commandId), `command ${c.symbol} #${c.sequence}`).toHaveLength(1);
      const order = byId.get(linked.get(c.commandId)![0]!);
      expect(`${order?.instruction} ${order?.quantity} ${order?.symbol}`).toBe(`${c.side} ${c.quantity} ${c.symbol}`);
      const hedge = hedges.find((h) => h.commandId === c.commandId);
      expect(D.format(D.parse(hedge?.filledQuantity ?? '0')), `filled of command ${c.symbol} #${c.sequence}`).toBe(order?.filledQuantity);
    }
    expect(linked.size).toBe(commands.length);
    expect(new Set([...linked.values()].flat())).toEqual(new Set(orders.map((o) => o.orderId)));
    expect(hedges.map((h) => h.commandId)).toEqual(commands.map((c) => c.commandId));

    // Every symbol hedged to within a share, nothing pending, nothing halted.
    for (const p of positions) {
      expect(D.lt(D.abs(D.parse(p.net)), D.ONE), `${p.symbol} net ${p.net}`).toBe(true);
      expect(p.halted).toBe(false);
    }
    expect(stats.kills).toBe(KILLS);
    expect(stats.reorgs + stats.rollbacks).toBeGreaterThan(0);

    expect((await service.stop('SIGTERM')).code).toBe(0);
    const injected = Object.fromEntries(proxy.injected);
    console.info(
      `chaos (seed ${seed}): ${stats.kills} kills, ${stats.sigterms} SIGTERMs; ${stats.trades} trades (${stats.ours} of ours), ${stats.reorgs} reorgs (${stats.dropped} of our transactions dropped, ${stats.moved} moved, ` +
        `${stats.insertedByOthers} fills inserted by another account, ${stats.followUps} reorgs of a shifted top right after), ${stats.rollbacks} rollbacks; ` +
        `${stats.resent} dropped transactions sent again (${stats.resentAtOnce} right after their reorg, ${stats.resentAfterRestart} after a restart; ${stats.droppedAgain} dropped again, ${stats.redrops} reorgs of those just sent again), ${stats.abandoned} never sent again; ` +
        `${stats.behindOthers} of our transactions re-mined or sent again behind another account's fill; ` +
        `${removedIds.length} logs removed of ${recordedIds.length} recorded (${recordedAgain} logs recorded again, ${otherContent} of them with other content, ${clearOntoAfterClear} a ClearV2 where an AfterClear was); ` +
        `${commands.length} hedge commands (${hedges.filter((h) => h.status === 'failed').length} failed, ${stats.scripts} scripted); RPC faults ${JSON.stringify(injected)}; broker requests ${JSON.stringify(sim.control.counters().requests)}`,
    );
  } finally {
    await proxy?.close();
    await stack.close(KEEP);
  }
}

describe('end-to-end chaos: reorgs, RPC faults and broker faults together, with kills', () => {
  it(`every canonical fill once, one order per command, every symbol hedged (seed ${SEED}${RUNS > 1 ? `, ${RUNS} runs` : ''}${WEBSOCKET ? ', websocket' : ''})`, async () => {
    for (let run = 0; run < RUNS; run++) await chaosRun(SEED + run);
  }, 150_000 * RUNS);
});
