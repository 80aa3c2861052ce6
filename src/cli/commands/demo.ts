/**
 * demo: the whole service on a local chain, with nothing to configure (what `npm start` runs).
 * Starts anvil, deploys the test orderbook and tokens, runs every role of `run` against a
 * fresh SQLite ledger with the paper broker, drives random takes and clears against our
 * order for a while, shows a live summary, waits for the hedges to settle, prints a report.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Address } from 'viem';
import * as D from '../../domain/decimal.ts';
import { loadConfig } from '../../config.ts';
import { openStore } from '../../eventstore/url.ts';
import { redactStoreUrl } from '../../eventstore/store-location.ts';
import type { EventStore } from '../../eventstore/port.ts';
import { PaperBroker } from '../../broker/paper.ts';
import { runService } from '../../services/service.ts';
import { ingesterSettings } from '../../chain/ingester-service.ts';
import { startAnvil, deployDevnet, createTrader, type Anvil, type DevTokenName, type Fill, type Trader } from '../../chain/devnet/index.ts';
import { accumulatorConfig, parse, UsageError } from '../context.ts';
import { table } from '../table.ts';
import { rootLogger } from '../../log.ts';
import { lcg } from '../../seeded-random.ts';

/** Anvil's second default account: our market-making order's owner. */
const OUR_OWNER: Address = '0x70997970c51812dc3a010c7d01b50e0d17dc79c8';
const TAKER: Address = '0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc';
const EQUITIES: readonly { token: DevTokenName; symbol: string }[] = [
  { token: 'tGME', symbol: 'GME' }, { token: 'GME0x', symbol: 'GME' }, { token: 'GMEs1', symbol: 'GME' },
  { token: 'tAAPL', symbol: 'AAPL' }, { token: 'AAPL0x', symbol: 'AAPL' }, { token: 'tSPLG', symbol: 'SPLG' },
];

interface Position { symbol: string; net: string; pending: { side: string; quantity: string } | null; trades: number; brokerBought: string; brokerSold: string }
interface Hedge { status: string }

export async function demo(argv: string[]): Promise<void> {
  const { values } = parse(argv, { duration: { type: 'string', default: '20' }, seed: { type: 'string', default: '1' } });
  const seconds = Number(values.duration);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new UsageError(`--duration takes seconds, e.g. --duration 30 (got ${values.duration})`);
  // The generator takes a 32-bit seed, 0 counting as 1: anything else would silently replay another seed's session.
  const seed = /^\d{1,10}$/.test(values.seed) ? Number(values.seed) : NaN;
  if (!(seed >= 1 && seed <= 0xffff_ffff)) throw new UsageError(`--seed takes a whole number from 1 to 4294967295, e.g. --seed 7 (got ${values.seed})`);
  if (values.config !== undefined) throw new UsageError('demo needs no configuration: it makes its own chain, orderbook and ledger (drop --config)');
  // --store keeps the ledger for querying afterwards: a bad URL (or log level) stops the demo before anything starts.
  const logLevel = process.env['LEDGER_LOG_LEVEL'];
  const given = loadConfig({ env: logLevel === undefined ? {} : { LEDGER_LOG_LEVEL: logLevel }, overrides: values.store === undefined ? {} : { store: values.store } });
  const kept = values.store === undefined ? undefined : given.store;
  rootLogger(logLevel ? given.logLevel : 'warn');
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const dir = mkdtempSync(join(tmpdir(), 'hedge-ledger-demo-'));
  const stop = new AbortController();
  // Ctrl-C, or a reader that went away (`npm start | head`), ends the demo early but cleanly: chain stopped,
  // temporary ledger removed. A second Ctrl-C does not wait for that: it removes the ledger and exits (the chain dies with the process).
  const early = new AbortController();
  const stopEarly = () => {
    if (!early.signal.aborted) return early.abort();
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  };
  for (const signal of STOP_SIGNALS) process.on(signal, stopEarly);
  process.stdout.once('close', stopEarly);
  const trading = AbortSignal.any([stop.signal, early.signal]);
  let store: EventStore | undefined;
  let anvil: Anvil | undefined;
  let service: Promise<void> | undefined;
  try {
    // A kept store must be empty, as the demo's chain is new every run.
    const storeUrl = kept ?? `sqlite:${join(dir, 'ledger.db')}`;
    store = await openStore(storeUrl);
    if (kept !== undefined && (await store.headPosition()) !== undefined) {
      throw new UsageError(`demo --store needs an empty store, and ${redactStoreUrl(kept)} already holds events (the demo's chain is new every run)`);
    }
    anvil = await startAnvil();
    say(`hedge-ledger demo: anvil on ${anvil.rpcUrl}, ledger ${kept === undefined ? join(dir, 'ledger.db') : redactStoreUrl(kept)}, paper broker, ${seconds}s of random trading`);
    const deployment = await deployDevnet(anvil.rpcUrl);
    say(`deployed the test orderbook ${deployment.orderbook} and ${Object.keys(deployment.tokens).length} tokens; our order owner is ${OUR_OWNER}`);
    const config = loadConfig({
      env: {},
      overrides: {
        store: storeUrl, // the executor keeps its mark beside this store's file, not beside the default ./data/ledger.db
        chainId: deployment.chainId, orderbook: deployment.orderbook.toLowerCase() as Address,
        owners: [OUR_OWNER], rpcUrl: anvil.rpcUrl, deploymentBlock: Number(deployment.deploymentBlock), confirmations: 0,
        chainPollIntervalMs: 200, pollIntervalMs: 200, httpPort: 0, broker: 'paper',
      },
    });
    let api = '';
    service = runService({ store, config, fold: accumulatorConfig(config, 'demo'), ingest: ingesterSettings(config, 'demo'), broker: new PaperBroker(), roles: new Set(['ingest', 'accumulate', 'execute', 'api']), signal: stop.signal, onListening: (url) => (api = url) });
    service.catch(() => stop.abort());
    while (api === '' && !stop.signal.aborted) await sleep(50);
    say(`the read-only HTTP API is on ${api} (try ${api}/positions)\n`);

    const sent = await trade(createTrader(anvil.rpcUrl, deployment), seconds, seed, async () => summary(await get<Position[]>(api, '/positions'), await get<Hedge[]>(api, '/hedges')), trading);
    if (early.signal.aborted) return stoppedEarly(say);
    say(`\ntrading stopped after ${sent.ours} fills of our order and ${sent.other} other logs; waiting for the hedges to settle…`);
    const settled = await settle(api, sent.ours, trading);
    if (early.signal.aborted) return stoppedEarly(say);
    stop.abort();
    await service.catch(() => undefined);
    report(say, await settled);
    if (kept !== undefined) {
      say(`\nthe ledger stays in ${redactStoreUrl(kept)}; query it with\n  LEDGER_CHAIN_ID=${deployment.chainId} LEDGER_ORDERBOOK=${config.orderbook} LEDGER_OWNERS=${OUR_OWNER} npx hedge-ledger positions --store ${redactStoreUrl(kept)}`);
    }
  } catch (error) {
    if (!early.signal.aborted) throw error; // else it is the chain or the API going away under the demo: it was asked to stop
  } finally {
    stop.abort();
    await service?.catch(() => undefined); // the roles stop (and checkpoint) before the store closes
    await store?.close();
    await anvil?.stop();
    rmSync(dir, { recursive: true, force: true });
    for (const signal of STOP_SIGNALS) process.off(signal, stopEarly);
    process.stdout.off('close', stopEarly);
  }
}

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const; // SIGHUP: the terminal closed

const stoppedEarly = (say: (line: string) => void): void => say('\nstopped early: the demo chain and its ledger are gone (--store keeps a ledger)');

async function get<T>(api: string, path: string): Promise<T> {
  const res = await fetch(`${api}${path}`);
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** Random takes and clears against our orders (and some that are not ours) for `seconds`. */
async function trade(trader: Trader, seconds: number, seed: number, show: () => Promise<string>, signal: AbortSignal) {
  const random = lcg(seed); // a seed replays the same session
  const prices = new Map([['GME', D.parse('25')], ['AAPL', D.parse('230')], ['SPLG', D.parse('80')]]);
  const sent = { ours: 0, other: 0 };
  const until = Date.now() + seconds * 1000;
  let lastShow = 0;
  while (Date.now() < until && !signal.aborted) {
    const equity = EQUITIES[Math.floor(random() * EQUITIES.length)]!;
    const price = walk(prices, equity.symbol, random);
    const fill = (owner: Address, side: 'sell' | 'buy'): Fill => {
      const shares = D.div(D.fromBigInt(BigInt(5 + Math.floor(random() * 145))), D.fromBigInt(100n)); // 0.05 to 1.49
      return { owner, side, equityToken: equity.token, shares: shares.units, usdc: D.mul(shares, price, 'floor').units / 10n ** 12n };
    };
    const side = random() < 0.5 ? 'sell' : 'buy';
    const roll = random();
    if (roll < 0.7) await trader.take(fill(OUR_OWNER, side));
    else if (roll < 0.9) {
      const ours = fill(OUR_OWNER, side);
      await trader.clear({ alice: { ...ours, owner: TAKER, side: side === 'sell' ? 'buy' : 'sell' }, bob: ours });
    }
    else await trader.take(fill(TAKER, side));
    if (roll < 0.9) sent.ours++;
    else sent.other++;
    if (Date.now() - lastShow > 1000) {
      lastShow = Date.now();
      process.stdout.write(`${process.stdout.isTTY ? '\r\x1b[K' : ''}${Math.ceil((until - Date.now()) / 1000)}s left · ${await show()}${process.stdout.isTTY ? '' : '\n'}`);
    }
    await sleep(50 + random() * 150);
  }
  return sent;
}

/** A small random walk of the symbol's price, rounded to cents. */
function walk(prices: Map<string, D.Decimal>, symbol: string, random: () => number): D.Decimal {
  const step = D.div(D.fromBigInt(BigInt(Math.floor(random() * 21) - 10)), D.fromBigInt(1000n)); // ±1%
  const next = D.round(D.mul(prices.get(symbol)!, D.add(D.ONE, step)), 2);
  prices.set(symbol, next);
  return next;
}

const summary = (positions: Position[], hedges: Hedge[]): string => {
  const filled = hedges.filter((h) => h.status === 'filled').length;
  const nets = positions.map((p) => `${p.symbol} ${p.net}${p.pending ? ` (${p.pending.side} ${p.pending.quantity} pending)` : ''}`).join(', ');
  return `fills ${positions.reduce((n, p) => n + p.trades, 0)} · hedges ${hedges.length} (${filled} filled) · net ${nets || '-'}`;
};

/** Waits until every fill sent is in the ledger and no hedge is open; returns the final state. */
async function settle(api: string, ours: number, signal: AbortSignal): Promise<{ positions: Position[]; hedges: Hedge[] }> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const positions = await get<Position[]>(api, '/positions');
    const hedges = await get<Hedge[]>(api, '/hedges');
    const fills = positions.reduce((n, p) => n + p.trades, 0);
    const open = hedges.some((h) => h.status !== 'filled' && h.status !== 'failed') || positions.some((p) => p.pending !== null);
    if ((fills >= ours && !open) || Date.now() > deadline || signal.aborted) return { positions, hedges };
    await sleep(250);
  }
}

function report(say: (line: string) => void, { positions, hedges }: { positions: Position[]; hedges: Hedge[] }): void {
  say('\nfinal positions:');
  say(table(['symbol', 'net', 'pending', 'onchain fills', 'broker bought', 'broker sold'],
    positions.map((p) => [p.symbol, p.net, p.pending && `${p.pending.side} ${p.pending.quantity}`, p.trades, p.brokerBought, p.brokerSold])));
  const byStatus = hedges.reduce<Record<string, number>>((m, h) => ({ ...m, [h.status]: (m[h.status] ?? 0) + 1 }), {});
  say(`\nhedges: ${hedges.length} (${Object.entries(byStatus).map(([s, n]) => `${n} ${s}`).join(', ') || 'none'})`);
  const unhedged = positions.filter((p) => D.gte(D.abs(D.parse(p.net)), D.ONE));
  say(unhedged.length === 0 ? 'every symbol ends with |net| < 1 share: fully hedged.' : `still unhedged: ${unhedged.map((p) => `${p.symbol} ${p.net}`).join(', ')}`);
}

