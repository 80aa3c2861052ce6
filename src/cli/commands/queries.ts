/** positions, hedges, trades, rejected: fold the stored ledger and print a table or JSON. */
import { accumulatorConfig, configFrom, jsonOption, parse } from '../context.ts';
import { withStore } from '../../eventstore/url.ts';
import { foldLedger } from '../../services/ledger-query.ts';
import { hedgesJson, positionsJson, rejectionJson, tradeJson } from '../../../projections/queries.ts';
import { table } from '../table.ts';
import type { Fill } from '../../../projections/fill.ts';
import type { LedgerView, LedgerViewListener } from '../../../projections/ledger.ts';

const out = (text: string): void => void process.stdout.write(`${text}\n`);

type Cell = string | number | boolean | null;

/** Checks the configuration before the store is opened (a bad one must not create a store file), then folds the ledger. */
async function foldStored(values: Parameters<typeof configFrom>[0], command: string, listener?: LedgerViewListener): Promise<LedgerView> {
  const config = configFrom(values);
  const fold = accumulatorConfig(config, command);
  return withStore(config.store, (store) => foldLedger(store, fold, listener));
}

/** Folds the ledger, then prints the view's rows as JSON (`--json`) or as a table. */
async function printView<R>(argv: string[], command: string, rowsOf: (view: LedgerView) => R[], headers: string[], cells: (row: R) => Cell[]): Promise<void> {
  const { values } = parse(argv, jsonOption);
  const rows = rowsOf(await foldStored(values, command));
  out(values.json ? JSON.stringify(rows) : table(headers, rows.map(cells)));
}

export const positions = (argv: string[]) =>
  printView(argv, 'positions', positionsJson,
    ['symbol', 'net', 'pending', 'halted', 'onchain bought', 'onchain sold', 'broker bought', 'broker sold', 'last price'],
    (p) => [p.symbol, p.net, p.pending && `${p.pending.side} ${p.pending.quantity}`, p.halted, p.onchainBought, p.onchainSold, p.brokerBought, p.brokerSold, p.lastPrice]);

export const hedges = (argv: string[]) =>
  printView(argv, 'hedges', hedgesJson,
    ['commandId', 'symbol', 'side', 'quantity', 'status', 'filled', 'avg price', 'broker order'],
    (h) => [h.commandId, h.symbol, h.side, h.quantity, h.status, h.filledQuantity, h.averagePrice, h.brokerOrderId]);

export async function trades(argv: string[]): Promise<void> {
  const { values } = parse(argv, jsonOption);
  // Keyed so that a fill undone by a reorg leaves the list again.
  const fills = new Map<string, ReturnType<typeof tradeJson>>();
  const key = (f: Fill) => `${f.logId}:${f.party}`;
  await foldStored(values, 'trades', { onFill: (f) => fills.set(key(f), tradeJson(f)), onReversal: (f) => fills.delete(key(f)) });
  const rows = [...fills.values()];
  if (values.json) return out(JSON.stringify(rows));
  out(table(
    ['block', 'log', 'tx', 'symbol', 'side', 'shares', 'price', 'usdc', 'token'],
    rows.map((t) => [t.blockNumber, t.logIndex, t.transactionHash, t.symbol, t.side, t.shares, t.price, t.usdc, t.tokenSymbol]),
  ));
}

/**
 * Streams rejections as the fold finds them: memory stays flat however many there are. The
 * JSON array opens with its first row, so a command that fails before one leaves stdout empty.
 */
export async function rejected(argv: string[]): Promise<void> {
  const { values } = parse(argv, jsonOption);
  const rows: (string | number | null)[][] = [];
  let first = true;
  const emit = (r: ReturnType<typeof rejectionJson>) => {
    if (!values.json) return void rows.push([r.blockNumber, r.logIndex, r.transactionHash, r.reason, r.detail]);
    process.stdout.write(`${first ? '[' : ','}${JSON.stringify(r)}`);
    first = false;
  };
  await foldStored(values, 'rejected', { onRejection: (r) => emit(rejectionJson(r)) });
  if (values.json) out(first ? '[]' : ']');
  else out(table(['block', 'log', 'tx', 'reason', 'detail'], rows));
}
