/** Orders and accounts rendered the way Schwab's Trader API writes them. */
import * as D from '../../domain/decimal.ts';
import { double, type Json } from './json.ts';
import { TERMINAL_STATUSES, type AccountInfo } from './model.ts';
import type { Execution, SimOrder } from './orders.ts';
import type { Position } from './positions.ts';

/** `2025-08-29T17:15:18+0000`: whole seconds, numeric offset. */
export const schwabTime = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, '+0000');

function activityJson(e: Execution): Json {
  return {
    activityType: 'EXECUTION',
    activityId: e.activityId,
    executionType: 'FILL',
    quantity: double(e.quantity),
    orderRemainingQuantity: double(e.remainingAfter),
    executionLegs: [{ legId: 1, quantity: double(e.quantity), mismarkedQuantity: double(0n), price: double(e.price), time: schwabTime(e.at) }],
  };
}

export function orderJson(o: SimOrder, account: AccountInfo): Json {
  const terminal = TERMINAL_STATUSES.has(o.status);
  return {
    session: 'NORMAL',
    duration: 'DAY',
    orderType: 'MARKET',
    complexOrderStrategyType: 'NONE',
    quantity: double(o.quantity),
    filledQuantity: double(o.filled),
    remainingQuantity: double(o.quantity - o.filled),
    requestedDestination: 'AUTO',
    destinationLinkName: 'AutoRoute',
    orderStrategyType: 'SINGLE',
    orderId: o.orderId,
    cancelable: !terminal && o.status !== 'PENDING_CANCEL',
    editable: false,
    status: o.status,
    statusDescription: o.statusDescription,
    enteredTime: schwabTime(o.enteredAt),
    closeTime: o.closedAt === undefined ? undefined : schwabTime(o.closedAt),
    accountNumber: Number(account.accountNumber),
    orderLegCollection: [
      {
        orderLegType: 'EQUITY',
        legId: 1,
        instrument: { assetType: 'EQUITY', symbol: o.symbol },
        instruction: o.instruction,
        positionEffect: 'OPENING',
        quantity: double(o.quantity),
      },
    ],
    orderActivityCollection: o.executions.length === 0 ? undefined : o.executions.map(activityJson),
  };
}

function positionJson(p: Position, price: D.Decimal | undefined): Json {
  const long = p.net > 0n ? p.net : 0n;
  const short = p.net < 0n ? -p.net : 0n;
  return {
    shortQuantity: double(short),
    averagePrice: double(p.averagePrice),
    longQuantity: double(long),
    averageLongPrice: long > 0n ? double(p.averagePrice) : undefined,
    averageShortPrice: short > 0n ? double(p.averagePrice) : undefined,
    instrument: { assetType: 'EQUITY', symbol: p.symbol },
    marketValue: price === undefined ? undefined : double(D.mul(price, D.fromBigInt(p.net))),
  };
}

/** `positions` is present only when the caller asked for `fields=positions`, as on Schwab. */
export function accountJson(account: AccountInfo, positions: readonly Position[] | undefined, priceOf: (symbol: string) => D.Decimal | undefined): Json {
  return {
    securitiesAccount: {
      type: 'MARGIN',
      accountNumber: account.accountNumber,
      roundTrips: 0,
      isDayTrader: false,
      isClosingOnlyRestricted: false,
      pfcbFlag: false,
      positions: positions?.map((p) => positionJson(p, priceOf(p.symbol))),
    },
  };
}
