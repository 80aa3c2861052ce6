/** positions, hedges, trades, rejected: fold the stored ledger and print a table or JSON. */
import { accumulatorConfig, configFrom, parse, withStore } from '../context.ts';
import { foldLedger } from '../../services/ledger-query.ts';
import { hedgesJson, positionsJson, rejectionJson, tradeJson } from '../../../projections/queries.ts';
import { table } from '../table.ts';

const out = (text: string): void => void process.stdout.write(`${text}\n`);

export async function positions(argv: string[]): Promise<void> {
  const { values } = parse(argv, {});
  const config = configFrom(values);
  const view = await withStore(config, (store) => foldLedger(store, accumulatorConfig(config, 'positions')));
  const rows = positionsJson(view);
  if (values.json) return out(JSON.stringify(rows));
  out(table(
    ['symbol', 'net', 'pending', 'halted', 'onchain bought', 'onchain sold', 'broker bought', 'broker sold', 'last price'],
    rows.map((p) => [p.symbol, p.net, p.pending && `${p.pending.side} ${p.pending.quantity}`, p.halted, p.onchainBought, p.onchainSold, p.brokerBought, p.brokerSold, p.lastPrice]),
  ));
}

export async function hedges(argv: string[]): Promise<void> {
  const { values } = parse(argv, {});
  const config = configFrom(values);
  const view = await withStore(config, (store) => foldLedger(store, accumulatorConfig(config, 'hedges')));
  const rows = hedgesJson(view);
  if (values.json) return out(JSON.stringify(rows));
  out(table(
    ['commandId', 'symbol', 'side', 'quantity', 'status', 'filled', 'avg price', 'broker order'],
    rows.map((h) => [h.commandId, h.symbol, h.side, h.quantity, h.status, h.filledQuantity, h.averagePrice, h.brokerOrderId]),
  ));
}

/** Streams rows as the fold produces them: memory stays flat however many there are. */
async function streamRows<T>(argv: string[], command: string, pick: (emit: (row: T) => void) => Parameters<typeof foldLedger>[2], headers: string[], cells: (row: T) => (string | number | null)[]): Promise<void> {
  const { values } = parse(argv, {});
  const config = configFrom(values);
  const rows: (string | number | null)[][] = [];
  let first = true;
  if (values.json) process.stdout.write('[');
  const emit = (row: T) => {
    if (values.json) {
      process.stdout.write(`${first ? '' : ','}${JSON.stringify(row)}`);
      first = false;
    } else rows.push(cells(row));
  };
  await withStore(config, (store) => foldLedger(store, accumulatorConfig(config, command), pick(emit)));
  if (values.json) out(']');
  else out(table(headers, rows));
}

export const trades = (argv: string[]) =>
  streamRows<ReturnType<typeof tradeJson>>(
    argv, 'trades', (emit) => ({ onFill: (f) => emit(tradeJson(f)) }),
    ['block', 'log', 'tx', 'symbol', 'side', 'shares', 'price', 'usdc', 'token'],
    (t) => [t.blockNumber, t.logIndex, t.transactionHash, t.symbol, t.side, t.shares, t.price, t.usdc, t.tokenSymbol],
  );

export const rejected = (argv: string[]) =>
  streamRows<ReturnType<typeof rejectionJson>>(
    argv, 'rejected', (emit) => ({ onRejection: (r) => emit(rejectionJson(r)) }),
    ['block', 'log', 'tx', 'reason', 'detail'],
    (r) => [r.blockNumber, r.logIndex, r.transactionHash, r.reason, r.detail],
  );
