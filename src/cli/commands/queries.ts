/** positions, hedges, trades, rejected: fold the stored ledger and print a table or JSON. */
import { jsonOption, parse, withLedger, type CommonValues } from '../context.ts';
import { foldLedger } from '../../services/ledger-query.ts';
import type { EventStore, Position } from '../../eventstore/port.ts';
import type { AccumulatorConfig } from '../../../projections/accumulator.ts';
import { hedgesJson, positionsJson, rejectionJson, rejectionKey, tradeJson, tradeKey } from '../../../projections/queries.ts';
import { Columns, table, type Cell } from '../table.ts';
import { progress, type Progress } from '../progress.ts';
import type { Fill, Rejection } from '../../../projections/fill.ts';
import type { LedgerView, LedgerViewListener } from '../../../projections/ledger.ts';
import { logger } from '../../log.ts';
import { LEDGER_PREFIXES } from '../../domain/events.ts';
import { outputClosed, outputDrained, writeOutput } from '../output.ts';

const out = (text: string): void => writeOutput(`${text}\n`);

/** Text written to stdout in chunks of ~64 KiB as it comes: a write per row cost a sixth of the CPU time of `trades --json`. */
function chunkedOutput(): { write(text: string): void; end(text: string): void } {
  let chunk = '';
  return {
    write: (text) => {
      chunk += text;
      if (chunk.length < 65_536) return;
      writeOutput(chunk);
      chunk = '';
    },
    end: (text) => out(`${chunk}${text}`),
  };
}

/**
 * A JSON array streamed element by element, so memory stays flat however many there are. It opens
 * with its first element: a command that fails before one leaves stdout empty.
 */
function jsonArray<T>(json: (item: T) => unknown): { push(item: T): void; end(): void } {
  const output = chunkedOutput();
  let first = true;
  return {
    push: (item) => {
      output.write(`${first ? '[' : ','}${JSON.stringify(json(item))}`);
      first = false;
    },
    end: () => output.end(first ? '[]' : ']'),
  };
}

/** A table streamed row by row; its header goes out with the first row (or at the end), once `columns` has been fitted to every row. */
function streamedTable<T>(columns: Columns, cells: (item: T) => Cell[]): { push(item: T): void; end(): void } {
  const output = chunkedOutput();
  let headed = false;
  const head = () => {
    if (!headed) output.write(columns.head());
    headed = true;
  };
  return {
    push: (item) => {
      head();
      output.write(`\n${columns.line(cells(item))}`);
    },
    end: () => {
      head();
      output.end('');
    },
  };
}

/** When a fold's rows reach stdout: after it ends, or during it (its listener prints as it goes). */
type Printing = 'after' | 'during';

/**
 * A fold's progress as a bar on a terminal (a million events take seconds). None elsewhere, so a
 * script's stderr stays quiet, and none while rows stream to the same terminal the bar draws on.
 */
function bar(label: string, printing: Printing): Progress | undefined {
  return !process.stderr.isTTY || (printing === 'during' && process.stdout.isTTY) ? undefined : progress(label);
}

/**
 * Folds the whole ledger (up to `upTo`), with a bar on a terminal. A query's only product is its
 * output: the fold keeps pace with a slow reader, and once stdout is closed (`trades | head` has
 * its rows) it stops there.
 */
async function foldWithBar(store: EventStore, fold: AccumulatorConfig, label: string, listener: LedgerViewListener, printing: Printing, upTo?: Position): Promise<LedgerView> {
  const shown = bar(label, printing);
  try {
    const view = await foldLedger(store, fold, { listener, progress: shown?.update, upTo, signal: outputClosed, backpressure: outputDrained });
    logger('queries').debug({ task: label, events: view.events, outputClosed: outputClosed.aborted }, 'fold ended');
    return view;
  } finally {
    shown?.finish();
  }
}

/** Folds the ledger once, printing after it. */
function foldStored(values: CommonValues, command: string): Promise<LedgerView> {
  return withLedger(values, command, (store, fold) => foldWithBar(store, fold, command, {}, 'after'));
}

/**
 * Two folds of the same events (those stored when the first began), for output that must know
 * the whole ledger before it prints its first row, yet must not hold every row: the `first` fold
 * notes what it needs, the `second` prints.
 */
function foldTwice(values: CommonValues, command: string, first: LedgerViewListener, second: LedgerViewListener, between: (view: LedgerView) => void = () => undefined): Promise<LedgerView | undefined> {
  return withLedger(values, command, async (store, fold) => {
    const head = await store.headPosition({ prefixes: LEDGER_PREFIXES });
    if (head === undefined) return undefined;
    between(await foldWithBar(store, fold, `${command} (pass 1 of 2)`, first, 'after', head));
    return foldWithBar(store, fold, `${command} (pass 2 of 2)`, second, 'during', head);
  });
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

/**
 * A list in flat memory whose entries a reorg can take back later (a fill undone, a rejection withdrawn), over
 * two folds of the same events: the first notes the step of each key's last take-back (rare: a few per reorg),
 * the second lists an entry unless its key is taken back after it. A step is an entry or a take-back; both
 * passes count them alike, so their numbers agree.
 */
function lastingEntries<T>(key: (item: T) => string) {
  const takenBack = new Map<string, number>();
  let firstStep = 0;
  let secondStep = 0;
  return {
    first: {
      entry: (): void => void firstStep++,
      takeBack: (item: T): void => void takenBack.set(key(item), firstStep++),
    },
    second: {
      /** Whether the entry stays on the list. */
      lasts: (item: T): boolean => (takenBack.get(key(item)) ?? -1) < secondStep++,
      takeBack: (): void => void secondStep++,
    },
  };
}

/**
 * Both forms stream in flat memory (holding 900,000 trades took ~1 GB, and their JSON text passed
 * V8's longest string at ~2.5 million), so the log is folded twice: the first fold notes the fills
 * a reorg undoes later and sizes the table's columns (over every fill, so after a reorg a column
 * can be wider than the rows listed), the second prints the other fills.
 */
export async function trades(argv: string[]): Promise<void> {
  const { values } = parse(argv, jsonOption);
  const columns = new Columns(['block', 'log', 'tx', 'symbol', 'side', 'shares', 'price', 'usdc', 'token']);
  const cells = (f: Fill): Cell[] => {
    const t = tradeJson(f);
    return [t.blockNumber, t.logIndex, t.transactionHash, t.symbol, t.side, t.shares, t.price, t.usdc, t.tokenSymbol];
  };
  const print = values.json ? jsonArray(tradeJson) : streamedTable(columns, cells);
  const { first, second } = lastingEntries(tradeKey);
  await foldTwice(values, 'trades', {
    onFill: (f) => {
      first.entry();
      if (!values.json) columns.fit(cells(f));
    },
    onReversal: first.takeBack,
  }, {
    onFill: (f) => {
      if (second.lasts(f)) print.push(f);
    },
    onReversal: second.takeBack,
  });
  print.end();
}

/**
 * Rejections stream like trades: two folds, the first noting the rejections a reorg withdraws later
 * and sizing the table's columns, the second printing the others. Both forms end with the ClearV2s
 * that no AfterClear has followed at the ledger's end, which the fold rejects only once a later log
 * closes their transaction: listed, not left out.
 */
export async function rejected(argv: string[]): Promise<void> {
  const { values } = parse(argv, jsonOption);
  const columns = new Columns(['block', 'log', 'tx', 'reason', 'detail']);
  const cells = (rejection: Rejection): Cell[] => {
    const r = rejectionJson(rejection);
    return [r.blockNumber, r.logIndex, r.transactionHash, r.reason, r.detail];
  };
  const print = values.json ? jsonArray(rejectionJson) : streamedTable(columns, cells);
  const fit = (r: Rejection) => {
    if (!values.json) columns.fit(cells(r));
  };
  const { first, second } = lastingEntries(rejectionKey);
  // Both folds stop at the same event, so they leave the same clears waiting: the first sizes their rows too.
  const view = await foldTwice(values, 'rejected', {
    onRejection: (r) => {
      first.entry();
      fit(r);
    },
    onRejectionWithdrawn: first.takeBack,
  }, {
    onRejection: (r) => {
      if (second.lasts(r)) print.push(r);
    },
    onRejectionWithdrawn: second.takeBack,
  }, (firstView) => firstView.awaitingAfterClear().forEach(fit));
  view?.awaitingAfterClear().forEach(print.push);
  print.end();
}
