/** ERC20 symbols of the tokens our order trades: USDC and tokenized equities. */
import { Ticker } from './codecs.ts';

/**
 * The base ticker a tokenized equity aggregates under (tGME, GME0x, GMEs1 → GME), or null
 * when the symbol is none of the forms. The forms add lowercase letters to an uppercase
 * ticker, so at most one of them can match. Plain string checks: this runs once per fill.
 */
export function baseTicker(tokenSymbol: string): string | null {
  const ticker = tokenSymbol.startsWith('t') ? tokenSymbol.slice(1)
    : tokenSymbol.endsWith('0x') || tokenSymbol.endsWith('s1') ? tokenSymbol.slice(0, -2)
    : null;
  return ticker !== null && Ticker.is(ticker) ? ticker : null;
}

export const isUsdc = (tokenSymbol: string): boolean => tokenSymbol === 'USDC';
