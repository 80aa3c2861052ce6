/** ERC20 symbols of the tokens our order trades: USDC and tokenized equities. */

const TICKER = /^[A-Z][A-Z0-9.]*$/;

/** The three tokenized-equity forms: tGME, GME0x, GMEs1. */
const EQUITY_FORMS: readonly RegExp[] = [/^t(.+)$/, /^(.+)0x$/, /^(.+)s1$/];

/**
 * The base ticker a tokenized equity aggregates under (tGME, GME0x, GMEs1 → GME), or null
 * when the symbol is none of the forms. The forms add lowercase letters to an uppercase
 * ticker, so at most one of them can match.
 */
export function baseTicker(tokenSymbol: string): string | null {
  for (const form of EQUITY_FORMS) {
    const ticker = form.exec(tokenSymbol)?.[1];
    if (ticker !== undefined && TICKER.test(ticker)) return ticker;
  }
  return null;
}

export const isUsdc = (tokenSymbol: string): boolean => tokenSymbol === 'USDC';
