/** Positions as a fold over executions in the order they happened. */
import * as D from '../../domain/decimal.ts';
import type { Instruction } from './model.ts';

export interface Fill {
  readonly symbol: string;
  readonly instruction: Instruction;
  readonly quantity: bigint;
  readonly price: D.Decimal;
}

export interface Position {
  readonly symbol: string;
  /** Signed shares: positive long, negative short. */
  readonly net: bigint;
  /** Average cost of the open position (average short price when short). */
  readonly averagePrice: D.Decimal;
}

const absBig = (n: bigint): bigint => (n < 0n ? -n : n);

function applyFill(p: Position, f: Fill): Position {
  const signed = f.instruction === 'BUY' ? f.quantity : -f.quantity;
  const net = p.net + signed;
  if (p.net === 0n || (p.net > 0n) === (signed > 0n)) {
    const cost = D.add(D.mul(p.averagePrice, D.fromBigInt(absBig(p.net))), D.mul(f.price, D.fromBigInt(f.quantity)));
    return { symbol: p.symbol, net, averagePrice: D.div(cost, D.fromBigInt(absBig(net))) };
  }
  if (net === 0n) return { symbol: p.symbol, net, averagePrice: D.ZERO };
  // Reducing keeps the cost basis; flipping sides opens at this fill's price.
  const flipped = (net > 0n) !== (p.net > 0n);
  return { symbol: p.symbol, net, averagePrice: flipped ? f.price : p.averagePrice };
}

/** Open positions, sorted by symbol. */
export function foldPositions(fills: Iterable<Fill>): Position[] {
  const bySymbol = new Map<string, Position>();
  for (const f of fills) {
    const current = bySymbol.get(f.symbol) ?? { symbol: f.symbol, net: 0n, averagePrice: D.ZERO };
    bySymbol.set(f.symbol, applyFill(current, f));
  }
  return [...bySymbol.values()].filter((p) => p.net !== 0n).sort((a, b) => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0));
}
