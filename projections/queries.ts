/** The JSON shapes of the queries (CLI `--json` and the HTTP API answer with the same). */
import { format } from '../src/domain/decimal.ts';
import type { Fill, Rejection } from './fill.ts';
import type { LedgerView } from './ledger.ts';

export const positionsJson = (view: LedgerView) =>
  view.symbols().map((symbol) => {
    const { state, totals } = view.position(symbol);
    return {
      symbol,
      net: format(state.net),
      pending: state.pending && { commandId: state.pending.commandId, side: state.pending.side, quantity: format(state.pending.quantity) },
      halted: state.halted,
      haltReason: totals.haltReason,
      consecutiveFailures: state.consecutiveFailures,
      onchainBought: format(totals.onchainBought),
      onchainSold: format(totals.onchainSold),
      brokerBought: format(totals.brokerBought),
      brokerSold: format(totals.brokerSold),
      lastPrice: state.lastPrice && format(state.lastPrice),
      trades: totals.trades,
    };
  });

export const hedgesJson = (view: LedgerView) =>
  [...view.hedges.values()].map((h) => ({
    commandId: h.commandId,
    symbol: h.symbol,
    side: h.side,
    quantity: format(h.quantity),
    status: h.status,
    filledQuantity: format(h.filledQuantity),
    averagePrice: h.averagePrice && format(h.averagePrice),
    brokerSymbol: h.brokerSymbol,
    brokerOrderId: h.brokerOrderId,
    sequence: h.sequence,
    reason: h.reason,
  }));

export const tradeJson = (f: Fill) => ({
  symbol: f.symbol,
  side: f.side,
  shares: format(f.shares),
  price: format(f.price),
  usdc: format(f.usdc),
  tokenSymbol: f.tokenSymbol,
  transactionHash: f.transactionHash,
  blockNumber: f.blockNumber.toString(),
  logIndex: f.logIndex,
  party: f.party,
  owner: f.owner,
  logId: f.logId,
});

/** A listed trade's key, so that the fill a reorg undoes leaves the list: the two fills of one clear differ by party. */
export const tradeKey = (f: Fill): string => `${f.logId}:${f.party}`;

/** A listed rejection's key, so that one a reorg withdraws leaves the list: the two parties of one clear differ by detail. */
export const rejectionKey = (r: Rejection): string => `${r.eventId}:${r.reason}:${r.detail}`;

export const rejectionJson = (r: Rejection) => ({
  reason: r.reason,
  detail: r.detail,
  eventId: r.eventId,
  transactionHash: r.transactionHash,
  blockNumber: r.blockNumber === null ? null : r.blockNumber.toString(),
  logIndex: r.logIndex,
});
