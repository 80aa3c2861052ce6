/** tokens.json of ingest-file: token address → ERC20 symbol, recorded once per token, so a mistake in it is refused, never recorded. */
import * as t from 'io-ts';
import * as E from 'fp-ts/lib/Either.js';
import { UsageError } from './context.ts';
import { Address, describeErrors, strictRecord } from '../domain/codecs.ts';
import type { TokenMetadata, TokenResolver } from '../services/ingester.ts';
import { readTextFile, repeatedKeys } from '../text-file.ts';

/** Whitespace around a symbol would make tGME a token no fill rule knows. */
const TokenSymbol = t.refinement(t.string, (s) => s !== '' && s.trim() === s, 'a non-empty symbol without surrounding whitespace');
/** Strict: a key that is no address would otherwise be dropped, and its token recorded as unknown for good. */
const TokensFile = strictRecord(Address, TokenSymbol);

/** Addresses are case-insensitive: two spellings of one address are one token given twice, and which symbol is meant cannot be told. */
function assertEachAddressOnce(path: string, text: string): void {
  const repeats = repeatedKeys(text, (key) => key.toLowerCase()).map(([first, repeat]) => `${JSON.stringify(first)} and ${JSON.stringify(repeat)}`);
  if (repeats.length > 0) throw new UsageError(`tokens file ${path}: an address given twice: ${repeats.join('; ')} (give each address once)`);
}

export interface FileTokenResolver extends TokenResolver {
  /** The tokens asked about that the file does not name: they are recorded as unknown. */
  readonly missing: ReadonlySet<string>;
}

/** Token symbols from a file: a token the file does not name is recorded as unknown, with that reason. */
export function fileTokenResolver(path: string): FileTokenResolver {
  let text: string;
  let json: unknown;
  try {
    text = readTextFile(path);
    json = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`tokens file ${path}: ${(e as Error).message}`);
  }
  const decoded = TokensFile.decode(json);
  if (E.isLeft(decoded)) {
    const { path: at, reason } = describeErrors(decoded.left);
    throw new UsageError(`tokens file ${path}: at ${at || '<root>'}: ${reason} (expected {"0x…address": "SYMBOL"})`);
  }
  assertEachAddressOnce(path, text);
  const symbols = new Map(Object.entries(decoded.right));
  const missing = new Set<string>();
  const metadata = (address: string): TokenMetadata => {
    const symbol = symbols.get(address);
    if (symbol !== undefined) return { symbol, reason: null };
    missing.add(address);
    return { symbol: null, reason: `not in tokens file ${path}` };
  };
  // The file's symbols hold at every block: the blocks the tokens are mentioned at do not matter.
  return { missing, resolve: async (tokens) => new Map([...tokens.keys()].map((a) => [a, metadata(a)])) };
}
