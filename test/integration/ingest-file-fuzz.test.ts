/**
 * ingest-file against bad input, as a property (docs/cli.md, ingest-file): for any file mixing
 * valid eth_getLogs logs (takes and clears of our orders and foreign ones, and logs that decode to
 * no fill) with bad lines made by mutating them (a field deleted or of the wrong type, bad hex,
 * quantities past 2^53 or negative, truncated JSON, lines that are JSON but no object, bytes that
 * are not UTF-8, blank lines, a byte order mark, CRLF endings, duplicates, `removed` logs, logs of
 * other contracts or events), a tokens file that may lack some tokens, and a ledger that may hold
 * the file's first blocks already, ingest-file
 * - completes (exit 0, no stack trace) and its summary counts each kind of line as the docs say;
 * - reports each malformed, foreign, other-event or removed line by its number, and no other;
 * - stores exactly what the valid lines alone store: `positions`, `hedges`, `trades` and
 *   `rejected` (--json) agree with a second store fed only those lines;
 * - accounts for every stored log: each yields a fill or a rejection with a reason (a paired
 *   AfterClear's fills are its ClearV2's), including the ones that decode to nothing (two topics,
 *   ABI offsets out of range, a ClearV2 without its AfterClear, unknown tokens, zero amounts…);
 * - appends nothing when the same file is ingested again.
 * A line that contradicts a valid one (two logs at one place…) stops the file at its block
 * instead (LogConflict, exit 1), the valid logs before that block stored.
 *
 * The first property runs the commands in-process (their stdout captured); its line reports come
 * from scanLogFile, the function whose reports ingest-file logs. The second runs ingest-file
 * through the real binary and reads its exit code, stdout summary and stderr reports. Each run
 * takes its own temporary directory and SQLite files. A longer campaign:
 * INGEST_FUZZ_RUNS=2000 INGEST_FUZZ_BINARY_RUNS=60 npx vitest run test/integration/ingest-file-fuzz.test.ts
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { keccak256, stringToHex, type Hex } from 'viem';
import { ingestFile, scanLogFile } from '../../src/cli/commands/ingest-file.ts';
import { LogConflict } from '../../src/services/ingester.ts';
import { hedges, positions, rejected, trades } from '../../src/cli/commands/queries.ts';
import { logEventId } from '../../src/domain/ids.ts';
import { CHAIN_ID, History, ORDERBOOK, OTHER_OWNER, OUR_OWNER, TOKEN, afterClearLog, clearV2Log, io, takeOrderV2Log, type OrderSpec, type RawLog, type TokenName } from '../support/orderbook-logs.ts';
import { EXAMPLE, runCli } from '../support/cli.ts';

// The in-process commands log through the process's root logger: quiet here (the binary's stderr is read instead).
process.env['LEDGER_LOG_LEVEL'] = 'silent';

const RUNS = Number(process.env['INGEST_FUZZ_RUNS'] ?? 30);
const BINARY_RUNS = Number(process.env['INGEST_FUZZ_BINARY_RUNS'] ?? 3);
/** A run takes ~25 ms in-process and ~0.6 s through the binary on an idle machine; a busy CI one is allowed several times that. */
const TIMEOUT_MS = Math.max(120_000, RUNS * 500 + BINARY_RUNS * 5_000);

// ---- the plan of a file: what fast-check generates and shrinks ----

const EQUITIES = ['tGME', 'GME0x', 'GMEs1', 'tAAPL', 'AAPL0x', 'tSPLG'] as const satisfies readonly TokenName[];
type Equity = (typeof EQUITIES)[number];

/** What one entry of the valid part of a file is: a take or a clear, or logs that yield no fill (the others). */
const KINDS = ['take', 'clear', 'twoTopics', 'badOffset', 'emptyData', 'unpairedClear', 'orphanAfterClear', 'clearBadAfter', 'badClear', 'zeroAmount', 'badIoIndex', 'notHedgeable'] as const;
type Kind = (typeof KINDS)[number];

interface Trade {
  readonly kind: Kind;
  readonly ours: boolean;
  /** For a clear: whether the other party is ours too. */
  readonly bothOurs: boolean;
  readonly side: 'SELL' | 'BUY';
  readonly tenths: number;
  readonly equity: Equity;
  /** Offset of its block from the file's first: trades may share a block. */
  readonly block: number;
}

/** How a bad line is made from a valid one (or from nothing), each with what ingest-file must make of it. */
const MUTATIONS = {
  deleteField: 'malformed',
  wrongType: 'malformed',
  oddHex: 'malformed',
  nonHex: 'malformed',
  upperPrefix: 'malformed',
  leadingZero: 'malformed',
  decimalQuantity: 'malformed',
  negative: 'malformed',
  hugeQuantity: 'malformed',
  truncated: 'malformed',
  notObject: 'malformed',
  bomInside: 'malformed',
  badTopic: 'malformed',
  removedNotBoolean: 'malformed',
  invalidUtf8: 'malformed',
  nul: 'malformed',
  invalidUtf8InString: 'duplicate',
  trailingCr: 'duplicate',
  empty: 'blank',
  whitespace: 'blank',
  duplicate: 'duplicate',
  uppercase: 'duplicate',
  extraField: 'duplicate',
  deleteRemoved: 'duplicate',
  reordered: 'duplicate',
  padded: 'duplicate',
  removedTrue: 'removed',
  noTopics: 'otherEvents',
  otherTopic: 'otherEvents',
  otherContract: 'otherContracts',
} as const;
type Mutation = keyof typeof MUTATIONS;
type Outcome = (typeof MUTATIONS)[Mutation] | 'valid' | 'conflict';

interface Mutant {
  readonly mutation: Mutation;
  /** Which valid line it is made from (modulo their number). */
  readonly of: number;
  /** Picks a field, a value, a position: modulo what the mutation has to choose from. */
  readonly pick: number;
  /** Where it goes among the lines (modulo their number). */
  readonly at: number;
}

interface Plan {
  readonly trades: readonly Trade[];
  /** Tokens left out of tokens.json: their fills are rejected as unknown_token. */
  readonly omitted: readonly TokenName[];
  readonly mutants: readonly Mutant[];
  /** Where each valid line goes (a shuffle: ingest-file sorts into chain order). */
  readonly shuffle: readonly number[];
  readonly bom: boolean;
  readonly crlf: 'none' | 'all' | 'some';
  readonly finalNewline: boolean;
  readonly crlfPick: number;
  /** tokens.json with checksummed-style (uppercase) addresses, or with a byte order mark. */
  readonly upperTokens: boolean;
  readonly tokensBom: boolean;
  /** The ledger holds the logs of the file's first blocks already, from an earlier file. */
  readonly storedBlocks: number;
  /** A line that contradicts a valid one (another log at its place, its log with other data, its block with another hash): the file stops at that block. */
  readonly conflict: { readonly of: number; readonly how: 'otherTransaction' | 'otherData' | 'otherBlockHash'; readonly at: number } | null;
}

const tradeArb: fc.Arbitrary<Trade> = fc.record({
  kind: fc.oneof({ weight: 6, arbitrary: fc.constantFrom<Kind>('take', 'clear') }, { weight: 3, arbitrary: fc.constantFrom<Kind>(...KINDS.slice(2)) }),
  ours: fc.boolean(),
  bothOurs: fc.boolean(),
  side: fc.constantFrom<'SELL' | 'BUY'>('SELL', 'BUY'),
  tenths: fc.integer({ min: 1, max: 40 }),
  equity: fc.constantFrom(...EQUITIES),
  block: fc.nat({ max: 6 }),
});

const planArb: fc.Arbitrary<Plan> = fc.record({
  trades: fc.array(tradeArb, { minLength: 1, maxLength: 8 }),
  omitted: fc.subarray(['USDC', ...EQUITIES] as TokenName[], { maxLength: 2 }),
  mutants: fc.array(fc.record({ mutation: fc.constantFrom(...(Object.keys(MUTATIONS) as Mutation[])), of: fc.nat(), pick: fc.nat(), at: fc.nat() }), { maxLength: 14 }),
  shuffle: fc.array(fc.nat(), { maxLength: 20 }),
  bom: fc.boolean(),
  crlf: fc.constantFrom<Plan['crlf']>('none', 'all', 'some'),
  finalNewline: fc.boolean(),
  crlfPick: fc.nat(),
  upperTokens: fc.boolean(),
  tokensBom: fc.boolean(),
  storedBlocks: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat({ max: 7 }) }),
  conflict: fc.option(fc.record({ of: fc.nat(), how: fc.constantFrom('otherTransaction' as const, 'otherData' as const, 'otherBlockHash' as const), at: fc.nat() }), { freq: 5 }),
});

// ---- building the file ----

/** A log as eth_getLogs returns it. */
type RpcLogJson = Record<string, unknown> & { topics: Hex[]; data: Hex };

/** A valid line's log, and what the ledger must make of it. */
interface ValidLog {
  readonly json: RpcLogJson;
  readonly id: string;
  /** A paired AfterClear yields nothing itself: its amounts are its ClearV2's fills. */
  readonly paired: boolean;
  /** The rejection reason it must get, when known from its kind alone. */
  readonly reason?: string;
}

const FIRST_BLOCK = 30_000_000;
const hexOf = (n: number | bigint) => `0x${n.toString(16)}`;
const E18 = 10n ** 18n;

function order(owner: Hex, received: TokenName, given: TokenName): OrderSpec {
  return { owner, validInputs: [io(received)], validOutputs: [io(given)] };
}

/** The valid logs of a plan's trades, each in its own transaction, in chain order. */
function validLogs(plan: Plan, run: string): ValidLog[] {
  const history = new History();
  const nextIndex = new Map<number, number>();
  const logs: ValidLog[] = [];
  plan.trades.forEach((trade, i) => {
    const block = FIRST_BLOCK + trade.block;
    const tx = `${run} trade ${i}`;
    const emit = (raw: RawLog, extra: Partial<ValidLog> = {}) => {
      const logIndex = nextIndex.get(block) ?? 0;
      nextIndex.set(block, logIndex + 1);
      const recorded = history.log(raw, { tx, logIndex, block: BigInt(block) }).data;
      const json: RpcLogJson = {
        address: recorded.address,
        topics: [...recorded.topics],
        data: recorded.data,
        blockNumber: hexOf(recorded.blockNumber),
        blockHash: recorded.blockHash,
        transactionHash: recorded.transactionHash,
        transactionIndex: hexOf(recorded.transactionIndex),
        logIndex: hexOf(recorded.logIndex),
        removed: false,
      };
      logs.push({ json, id: logEventId(CHAIN_ID, recorded.transactionHash, logIndex), paired: false, ...extra });
    };
    const owner = trade.ours ? OUR_OWNER : OTHER_OWNER;
    const shares = (BigInt(trade.tenths) * E18) / 10n;
    const usdc = BigInt(trade.tenths) * 2_000_000n;
    // Our order gives equity (SELL) or USDC (BUY).
    const [received, given]: [TokenName, TokenName] = trade.side === 'SELL' ? ['USDC', trade.equity] : [trade.equity, 'USDC'];
    const take = () => takeOrderV2Log(order(owner, received, given), trade.side === 'SELL' ? { input: shares, output: usdc } : { input: usdc, output: shares });
    // Alice is `owner`'s order; bob, the counterparty, gives what alice receives.
    const clear = () => clearV2Log(order(owner, received, given), order(trade.bothOurs ? OUR_OWNER : OTHER_OWNER, given, received));
    const aliceGives = trade.side === 'SELL' ? shares : usdc;
    const aliceGets = trade.side === 'SELL' ? usdc : shares;
    const settle = () => afterClearLog({ aliceOutput: aliceGives, bobOutput: aliceGets, aliceInput: aliceGets, bobInput: aliceGives });
    /** The reason our take's tokens call for, unless a token is unknown (then unknown_token comes first). */
    const unlessUnknown = (reason: string, ...tokens: TokenName[]) => (tokens.some((t) => plan.omitted.includes(t)) ? {} : { reason });
    const malformedData = (raw: RawLog, data: Hex): RawLog => ({ topics: raw.topics, data });
    switch (trade.kind) {
      case 'take':
        return emit(take(), trade.ours ? {} : { reason: 'not_ours' });
      case 'clear':
        emit(clear(), trade.ours || trade.bothOurs ? {} : { reason: 'not_ours' });
        return emit(settle(), { paired: true });
      case 'twoTopics': {
        const raw = take();
        return emit({ topics: [raw.topics[0]!, keccak256(stringToHex(`${tx} topic`))], data: raw.data }, { reason: 'malformed_log' });
      }
      case 'badOffset': {
        // The offset of the take's config (the data's second word) points past the end of the data.
        const raw = take();
        const offset = ((raw.data.length - 2) / 2 + 32).toString(16).padStart(64, '0');
        return emit({ topics: raw.topics, data: `0x${raw.data.slice(2, 66)}${offset}${raw.data.slice(130)}` }, { reason: 'malformed_log' });
      }
      case 'emptyData':
        return emit(malformedData(take(), pick<Hex>(['0x', '0x00', `0x${'00'.repeat(31)}`], trade.tenths)), { reason: 'malformed_log' });
      case 'unpairedClear':
        return emit(clear(), { reason: 'unpaired_clear' });
      case 'orphanAfterClear':
        return emit(settle(), { reason: 'unpaired_after_clear' });
      case 'clearBadAfter':
        // Its AfterClear does not decode: the clear gets no amounts.
        emit(clear(), { reason: 'unpaired_clear' });
        return emit(malformedData(settle(), settle().data.slice(0, 2 + 64 * 3) as Hex), { reason: 'malformed_log' });
      case 'badClear':
        emit(malformedData(clear(), clear().data.slice(0, 2 + 64 * 2) as Hex), { reason: 'malformed_log' });
        return emit(settle(), { reason: 'unpaired_after_clear' });
      case 'zeroAmount':
        return emit(takeOrderV2Log(order(OUR_OWNER, received, given), trade.side === 'SELL' ? { input: shares, output: 0n } : { input: 0n, output: shares }), { reason: 'zero_amount' });
      case 'badIoIndex':
        return emit(takeOrderV2Log(order(OUR_OWNER, received, given), { input: shares, output: usdc, inputIOIndex: 1n + BigInt(trade.tenths % 2) * 2n ** 255n }), { reason: 'bad_io_index' });
      case 'notHedgeable':
        return emit(takeOrderV2Log(order(OUR_OWNER, 'WETH', given), { input: shares, output: E18 }), unlessUnknown('not_hedgeable', 'WETH', given));
    }
  });
  return logs;
}

const REQUIRED = ['address', 'topics', 'data', 'blockNumber', 'blockHash', 'transactionHash', 'transactionIndex', 'logIndex'] as const;
const QUANTITIES = ['blockNumber', 'transactionIndex', 'logIndex'] as const;
const HEXES = ['address', 'data', 'blockHash', 'transactionHash'] as const;
const WRONG_VALUES: readonly unknown[] = [1, null, true, [], {}, 'nope', -1, 1.5];

const pick = <T>(items: readonly T[], n: number): T => items[n % items.length]!;

/** Stands for a byte that is not UTF-8 (0xff) in a line's text: replaced when the file is written. */
const INVALID_BYTE = '\uE000';
function toBytes(content: string): Buffer {
  const parts = content.split(INVALID_BYTE).map((part) => Buffer.from(part, 'utf8'));
  return Buffer.concat(parts.flatMap((part, i) => (i === 0 ? [part] : [Buffer.from([0xff]), part])));
}

/** One bad (or redundant) line made from `log`'s JSON; its text without a line ending. */
function mutate(mutation: Mutation, log: RpcLogJson, n: number): string {
  const line = JSON.stringify(log);
  const edited = (changes: Record<string, unknown>) => JSON.stringify({ ...log, ...changes });
  const hexField = pick([...HEXES, 'topics'] as const, n);
  const hexOfField = (field: (typeof HEXES)[number] | 'topics'): string => (field === 'topics' ? log.topics[0]! : (log[field] as string));
  const withHex = (field: (typeof HEXES)[number] | 'topics', value: string) => edited({ [field]: field === 'topics' ? [value] : value });
  switch (mutation) {
    case 'deleteField': {
      const { [pick(REQUIRED, n)]: _, ...rest } = log;
      return JSON.stringify(rest);
    }
    case 'wrongType': {
      const field = pick(REQUIRED, n);
      const value = pick(WRONG_VALUES, Math.floor(n / REQUIRED.length));
      // No topics at all is a log of no event we read, not a malformed one.
      return edited({ [field]: field === 'topics' && Array.isArray(value) ? 'nope' : value });
    }
    case 'oddHex':
      return withHex(hexField, `${hexOfField(hexField)}${pick(['0', 'a'], n)}`);
    case 'nonHex': {
      const field = pick([...HEXES, ...QUANTITIES], n);
      const value = log[field] as string;
      const at = 2 + (Math.floor(n / 7) % Math.max(1, value.length - 2));
      return edited({ [field]: `${value.slice(0, at)}${pick(['g', 'z', ' ', '-', 'é'], n)}${value.slice(at + 1)}` });
    }
    case 'upperPrefix': {
      const field = pick([...HEXES, ...QUANTITIES], n);
      return edited({ [field]: `0X${(log[field] as string).slice(2)}` });
    }
    case 'leadingZero': {
      const field = pick(QUANTITIES, n);
      return edited({ [field]: `0x0${(log[field] as string).slice(2)}` });
    }
    case 'decimalQuantity': {
      const field = pick(QUANTITIES, n);
      return edited({ [field]: BigInt(log[field] as string).toString() });
    }
    case 'negative': {
      const field = pick(QUANTITIES, n);
      return edited({ [field]: pick([`-${log[field] as string}`, `0x-${(log[field] as string).slice(2)}`, -1], Math.floor(n / 3)) });
    }
    case 'hugeQuantity': {
      // Past 2^53: no chain has such a block or log index, and a JavaScript number would round it.
      const field = pick(QUANTITIES, n);
      return edited({ [field]: hexOf(2n ** 53n + BigInt(log[field] as string) + BigInt(Math.floor(n / 3) % 5)) });
    }
    case 'truncated':
      return line.slice(0, 1 + (n % (line.length - 1)));
    case 'notObject':
      return pick(['42', '"a log"', 'null', 'true', '[]', `[${line}]`, '{}', '-0', '"\\ud800"'], n);
    case 'bomInside':
      return `\uFEFF${line}`;
    case 'badTopic':
      return edited({ topics: pick([[`${log.topics[0]!}00`], [log.topics[0]!, 'x'], log.topics[0]!, [1], [null]], n) });
    case 'removedNotBoolean':
      return edited({ removed: pick(['false', 0, null, 'true'], n) });
    case 'invalidUtf8':
      return pick([`${INVALID_BYTE}${line}`, `${line.slice(0, 1)}${INVALID_BYTE}${line.slice(1)}`], n);
    case 'nul':
      return pick([`${line}\u0000`, `\u0000${line}`], n);
    case 'invalidUtf8InString':
      // Decoded as U+FFFD inside a string the log does not read: still the log.
      return edited({ note: `a${INVALID_BYTE}b` });
    case 'trailingCr':
      return `${line}\r`;
    case 'empty':
      return '';
    case 'whitespace':
      return pick([' ', '\t', '   \t ', '\u00a0'], n);
    case 'duplicate':
      return line;
    case 'uppercase': {
      const field = pick([...HEXES, ...QUANTITIES, 'topics'] as const, n);
      const upper = (value: string) => `0x${value.slice(2).toUpperCase()}`;
      return edited({ [field]: field === 'topics' ? log.topics.map(upper) : upper(log[field] as string) });
    }
    case 'extraField':
      return edited(pick<Record<string, unknown>>([{ blockTimestamp: '0x6553f100' }, { extra: { nested: [1, 2] } }, { chainId: '0x2105' }, { __proto__x: null }], n));
    case 'deleteRemoved': {
      const { removed: _, ...rest } = log;
      return JSON.stringify(rest);
    }
    case 'reordered':
      return JSON.stringify(Object.fromEntries(Object.entries(log).reverse()));
    case 'padded':
      return pick([`  ${line}`, `${line}\t `, JSON.stringify(log, null, 0).replace(/,/g, ', ')], n);
    case 'removedTrue':
      return edited({ removed: true });
    case 'noTopics':
      return edited({ topics: [] });
    case 'otherTopic':
      return edited({ topics: [keccak256(stringToHex(pick(['DepositV2(address,address,uint256,uint256)', 'AddOrderV2()', 'Transfer(address,address,uint256)'], n)))] });
    case 'otherContract':
      return edited({ address: pick(['0x9999999999999999999999999999999999999999', TOKEN.USDC], n) });
  }
}

interface FileLine {
  readonly text: string;
  readonly outcome: Outcome;
}

interface Built {
  /** The file's bytes. */
  readonly content: string;
  /** The lines ingest-file reads, with what each must become (numbered from 1). */
  readonly lines: readonly FileLine[];
  readonly valid: readonly ValidLog[];
  /** The block of the line that contradicts a valid one, if any. */
  readonly conflictBlock: bigint | null;
  /** tokens.json's text. */
  readonly tokens: string;
}

function build(plan: Plan, run: string): Built {
  const valid = validLogs(plan, run);
  const lines: FileLine[] = valid.map((log) => ({ text: JSON.stringify(log.json), outcome: 'valid' }));
  // A fixed shuffle: swap each line with the one the plan names.
  plan.shuffle.forEach((to, from) => {
    const [i, j] = [from % lines.length, to % lines.length];
    [lines[i], lines[j]] = [lines[j]!, lines[i]!];
  });
  for (const m of plan.mutants) {
    const line = { text: mutate(m.mutation, valid[m.of % valid.length]!.json, m.pick), outcome: MUTATIONS[m.mutation] };
    lines.splice(m.at % (lines.length + 1), 0, line);
  }
  let conflictBlock: bigint | null = null;
  if (plan.conflict !== null) {
    const { json } = valid[plan.conflict.of % valid.length]!;
    const changes = { otherTransaction: { transactionHash: keccak256(stringToHex(`${run} conflict`)) }, otherData: { data: `0x${'00'.repeat(32)}` }, otherBlockHash: { blockHash: keccak256(stringToHex(`${run} fork`)) } }[plan.conflict.how];
    lines.splice(plan.conflict.at % (lines.length + 1), 0, { text: JSON.stringify({ ...json, ...changes }), outcome: 'conflict' });
    conflictBlock = BigInt(json.blockNumber as string);
  }
  // A BOM on the first line is the file's: ignored. A BOM inside the file is a malformed line.
  if (!plan.bom && lines[0]?.text.startsWith('\uFEFF')) lines[0] = { ...lines[0], outcome: 'duplicate' };
  const endings = lines.map((_, i) => (plan.crlf === 'all' || (plan.crlf === 'some' && ((plan.crlfPick >> (i % 30)) & 1) === 1) ? '\r\n' : '\n'));
  let content = plan.bom ? '\uFEFF' : '';
  lines.forEach((line, i) => {
    content += line.text;
    if (i < lines.length - 1 || plan.finalNewline) content += endings[i];
  });
  // An empty last line without a line ending is no line at all.
  const read = lines.length > 0 && !plan.finalNewline && lines[lines.length - 1]!.text === '' && !(plan.bom && lines.length === 1) ? lines.slice(0, -1) : lines;
  const tokens = Object.fromEntries(
    Object.entries(TOKEN).filter(([name]) => !plan.omitted.includes(name as TokenName)).map(([name, address]) => [plan.upperTokens ? `0x${address.slice(2).toUpperCase()}` : address, name]),
  );
  return { content, lines: read, valid, conflictBlock, tokens: `${plan.tokensBom ? '\uFEFF' : ''}${JSON.stringify(tokens, null, 2)}` };
}

// ---- running it ----

const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** What a command printed on stdout, run in-process. */
async function stdoutOf(command: (argv: string[]) => Promise<void>, argv: string[]): Promise<string> {
  const chunks: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  }) as typeof process.stdout.write;
  try {
    await command(argv);
  } finally {
    process.stdout.write = write;
  }
  return chunks.join('');
}

interface Summary {
  readonly lines: number;
  readonly appended: number;
  readonly alreadyIngested: number;
  readonly outOfOrder: number;
  readonly tokensRecorded: number;
  readonly tokensUnknown: number;
  readonly blank: number;
  readonly malformed: number;
  readonly otherContracts: number;
  readonly otherEvents: number;
  readonly removed: number;
}

interface Workspace {
  readonly dir: string;
  readonly config: string;
  readonly tokens: string;
}

function workspace(built: Built): Workspace {
  const dir = mkdtempSync(join(tmpdir(), 'ingest-fuzz-'));
  dirs.push(dir);
  const config = join(dir, 'ledger.json');
  writeFileSync(config, JSON.stringify({ chainId: CHAIN_ID, orderbook: ORDERBOOK, owners: [OUR_OWNER] }));
  const tokens = join(dir, 'tokens.json');
  writeFileSync(tokens, built.tokens);
  return { dir, config, tokens };
}

const storeArgs = (w: Workspace, name: string) => ['--store', `sqlite:${join(w.dir, `${name}.db`)}`, '--config', w.config];

async function ingestInProcess(w: Workspace, file: string, store: string): Promise<Summary> {
  return JSON.parse(await stdoutOf(ingestFile, [file, '--tokens', w.tokens, '--json', ...storeArgs(w, store)])) as Summary;
}

/** positions, hedges, trades and rejected (--json) of a store, parsed. */
async function queries(w: Workspace, store: string) {
  const run = async (command: (argv: string[]) => Promise<void>) => JSON.parse(await stdoutOf(command, ['--json', ...storeArgs(w, store)])) as Record<string, unknown>[];
  return { positions: await run(positions), hedges: await run(hedges), trades: await run(trades), rejected: await run(rejected) };
}

const count = (lines: readonly FileLine[], outcome: Outcome) => lines.filter((l) => l.outcome === outcome).length;
const numbersOf = (lines: readonly FileLine[], outcomes: readonly Outcome[]) => lines.flatMap((l, i) => (outcomes.includes(l.outcome) ? [i + 1] : []));
const REPORTED: readonly Outcome[] = ['malformed', 'otherContracts', 'otherEvents', 'removed'];

/** What the file's summary must say, given what the valid lines alone appended. */
function expectSummary(summary: Summary, built: Built, validOnly: Summary, before: Pick<Summary, 'appended' | 'tokensRecorded' | 'tokensUnknown'>): void {
  expect(summary).toMatchObject({
    lines: built.lines.length,
    appended: built.valid.length - before.appended,
    alreadyIngested: count(built.lines, 'duplicate') + before.appended,
    outOfOrder: 0,
    blank: count(built.lines, 'blank'),
    malformed: count(built.lines, 'malformed'),
    otherContracts: count(built.lines, 'otherContracts'),
    otherEvents: count(built.lines, 'otherEvents'),
    removed: count(built.lines, 'removed'),
    tokensRecorded: validOnly.tokensRecorded - before.tokensRecorded,
    tokensUnknown: validOnly.tokensUnknown - before.tokensUnknown,
  });
}

/** Every stored log yields a fill or a rejection (a paired AfterClear's are its ClearV2's), with the reason its kind calls for. */
function expectAccounted(valid: readonly ValidLog[], result: Awaited<ReturnType<typeof queries>>): void {
  const filled = new Set(result.trades.map((t) => t['logId']));
  const reasons = new Map<unknown, unknown[]>();
  for (const r of result.rejected) reasons.set(r['eventId'], [...(reasons.get(r['eventId']) ?? []), r['reason']]);
  const unaccounted = valid.filter((log) => !log.paired && !filled.has(log.id) && !reasons.has(log.id));
  expect(unaccounted.map((log) => `${log.json.blockNumber as string}:${log.json.logIndex as string}`), 'stored logs with neither a fill nor a rejection').toEqual([]);
  for (const log of valid.filter((l) => l.reason !== undefined)) expect(reasons.get(log.id), `rejections of ${log.json.blockNumber as string}:${log.json.logIndex as string}`).toContain(log.reason);
}

let runs = 0;

/** What ingest-file said: its summary, or (stopped by a LogConflict) its error; the lines it reported. */
interface Ingested {
  readonly summary: Summary | null;
  readonly failure: string | null;
  readonly reported: number[];
}

async function fuzzedFileHolds(plan: Plan, ingest: (w: Workspace, file: string) => Promise<Ingested>): Promise<void> {
  const built = build(plan, `run ${++runs}`);
  const w = workspace(built);
  const blockOf = (log: ValidLog) => BigInt(log.json.blockNumber as string);
  const linesOf = (logs: readonly ValidLog[]) => logs.map((log) => `${JSON.stringify(log.json)}\n`).join('');
  try {
    const fuzzed = join(w.dir, 'fuzzed.jsonl');
    writeFileSync(fuzzed, toBytes(built.content));
    // The ledger may hold the first blocks' logs already (an earlier file): the file's copies of them count as ingested.
    const storedBlocks = BigInt(FIRST_BLOCK + plan.storedBlocks);
    const stored = built.valid.filter((log) => blockOf(log) < storedBlocks);
    // A contradiction stops the file at its block: the valid logs before it are stored.
    const kept = built.conflictBlock === null ? built.valid : built.valid.filter((log) => blockOf(log) < built.conflictBlock! || blockOf(log) < storedBlocks);
    const validFile = join(w.dir, 'valid.jsonl');
    writeFileSync(validFile, linesOf(kept));
    const validOnly = await ingestInProcess(w, validFile, 'valid');
    expect(validOnly).toMatchObject({ appended: kept.length, malformed: 0, alreadyIngested: 0 });

    const before = { appended: 0, tokensRecorded: 0, tokensUnknown: 0 };
    if (stored.length > 0) {
      writeFileSync(join(w.dir, 'stored.jsonl'), linesOf(stored));
      Object.assign(before, await ingestInProcess(w, join(w.dir, 'stored.jsonl'), 'fuzzed'));
    }
    expect(before.appended).toBe(stored.length);
    const { summary, failure, reported } = await ingest(w, fuzzed);
    if (built.conflictBlock === null) {
      expect(failure).toBeNull();
      expectSummary(summary!, built, validOnly, before);
    } else {
      expect({ summary, failure }).toEqual({ summary: null, failure: expect.stringMatching(new RegExp(`: the logs before block ${built.conflictBlock} are appended, none from it on$`)) });
    }
    expect(reported, 'line numbers reported').toEqual(numbersOf(built.lines, REPORTED));

    const [got, want] = [await queries(w, 'fuzzed'), await queries(w, 'valid')];
    expect(got).toEqual(want);
    expectAccounted(kept, got);
    if (built.conflictBlock !== null) return;

    const again = await ingestInProcess(w, fuzzed, 'fuzzed');
    expect(again).toMatchObject({ appended: 0, alreadyIngested: built.valid.length + count(built.lines, 'duplicate'), tokensRecorded: 0 });
  } finally {
    rmSync(w.dir, { recursive: true, force: true });
  }
}

/** ingest-file in-process; its reports as scanLogFile gives them to the command's logger. */
async function inProcess(w: Workspace, file: string): Promise<Ingested> {
  const reported: number[] = [];
  await scanLogFile(file, CHAIN_ID, ORDERBOOK, (line) => reported.push(line));
  try {
    return { summary: await ingestInProcess(w, file, 'fuzzed'), failure: null, reported };
  } catch (error) {
    if (!(error instanceof LogConflict)) throw error;
    return { summary: null, failure: error.message, reported };
  }
}

/** ingest-file through the real binary: exit 0, no stack trace, one `line skipped` warning per reported line. */
async function throughBinary(w: Workspace, file: string): Promise<Ingested> {
  const { code, stdout, stderr } = await runCli(['ingest-file', file, '--tokens', w.tokens, '--json', ...storeArgs(w, 'fuzzed')]);
  expect(stderr.split('\n').filter((l) => /^\s+at /.test(l)), 'stack trace').toEqual([]);
  // A LogConflict: exit 1, its message the last line, nothing on stdout.
  const failure = /\nhedge-ledger ingest-file: (.*)\n$/.exec(`\n${stderr}`)?.[1] ?? null;
  expect(code).toBe(failure === null ? 0 : 1);
  const warnings = stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; line?: number; problem?: string });
  const skipped = warnings.filter((w) => w.msg === 'line skipped');
  for (const s of skipped) expect(s.problem, `problem of line ${s.line}`).toMatch(/\S/);
  if (failure !== null) {
    expect(stdout).toBe('');
    return { summary: null, failure, reported: skipped.map((s) => s.line!) };
  }
  const summary = JSON.parse(stdout) as Summary;
  // Each token the tokens file lacks is named once.
  const unknown = (warnings as { msg: string; token?: string }[]).filter((w) => w.msg.startsWith('token not in the tokens file')).map((w) => w.token);
  expect(new Set(unknown).size).toBe(summary.tokensUnknown);
  expect(unknown).toHaveLength(summary.tokensUnknown);
  return { summary, failure: null, reported: skipped.map((s) => s.line!) };
}

/** A plan of one valid line and `mutants`, as fast-check shrinks its counterexamples. */
const planOf = (trades: Trade[], mutants: Mutant[] = []): Plan => ({ trades, omitted: [], mutants, shuffle: [], bom: false, crlf: 'none', finalNewline: false, crlfPick: 0, upperTokens: false, tokensBom: false, storedBlocks: 0, conflict: null });
const foreignTake: Trade = { kind: 'take', ours: false, bothOurs: false, side: 'SELL', tenths: 1, equity: 'tGME', block: 0 };

describe('ingest-file: quantities past 2^53 are malformed lines', () => {
  it('fast-check counterexample: a copy of a log moved past block 2^53 is reported and skipped (was a LogConflict, exit 1)', async () => {
    await fuzzedFileHolds(planOf([foreignTake], [{ mutation: 'hugeQuantity', of: 0, pick: 0, at: 0 }]), inProcess);
  });

  it('two logs of a transaction at log indexes 2^53 and 2^53 + 1 (one event id as numbers), a log at block 2^60 (every later log out of order): each reported, the good lines ingested, a later file appended', async () => {
    const example = readFileSync(join(EXAMPLE, 'logs.jsonl'), 'utf8').split('\n');
    const take = JSON.parse(example[0]!) as Record<string, unknown>;
    const at = (changes: Record<string, unknown>) => JSON.stringify({ ...take, transactionHash: `0x${'ab'.repeat(32)}`, ...changes });
    const dir = mkdtempSync(join(tmpdir(), 'ingest-fuzz-'));
    dirs.push(dir);
    const file = join(dir, 'huge.jsonl');
    writeFileSync(file, [at({ logIndex: '0x20000000000000' }), at({ logIndex: '0x20000000000001' }), example[0], at({ blockNumber: '0x1000000000000000', blockHash: `0x${'ef'.repeat(32)}` })].join('\n'));
    const args = (logs: string) => ['ingest-file', logs, '--tokens', join(EXAMPLE, 'tokens.json'), '--json', '--store', `sqlite:${join(dir, 'ledger.db')}`, '--config', join(EXAMPLE, 'ledger.json')];
    const first = await runCli(args(file));
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ lines: 4, appended: 1, malformed: 3 });
    const problems = first.stderr.split('\n').filter((l) => l.includes('line skipped')).map((l) => JSON.parse(l) as { line: number; problem: string });
    expect(problems).toEqual([1, 2, 4].map((line) => expect.objectContaining({ line, problem: expect.stringMatching(/^(logIndex|blockNumber): expected a hex quantity of at most 2\^53 - 1 \(0x1fffffffffffff\), got "0x\w+"$/) })));
    // The example's other logs come after its first one: appended, none out of order.
    const later = await runCli(args(join(EXAMPLE, 'logs.jsonl')));
    expect(later.code).toBe(0);
    expect(JSON.parse(later.stdout)).toMatchObject({ appended: 7, alreadyIngested: 2, outOfOrder: 0 });
  });
});

describe('a ClearV2 without its AfterClear at the ledger\'s end', () => {
  it('fast-check counterexample: a foreign ClearV2, the file\'s only log, is listed by rejected as unpaired_clear (was in no list)', async () => {
    await fuzzedFileHolds(planOf([{ ...foreignTake, kind: 'unpairedClear' }]), inProcess);
  });

  it('is listed by rejected (JSON and table) until an AfterClear of its transaction, ingested later, pairs it', async () => {
    const history = new History();
    const ours = order(OUR_OWNER, 'tGME', 'USDC');
    const theirs = order(OTHER_OWNER, 'USDC', 'tGME');
    const at = (raw: RawLog, logIndex: number) => {
      const log = history.log(raw, { tx: 'clear', logIndex, block: 30_000_000n }).data;
      return JSON.stringify({ ...log, chainId: undefined, blockNumber: hexOf(log.blockNumber), transactionIndex: hexOf(log.transactionIndex), logIndex: hexOf(log.logIndex) });
    };
    const built = build(planOf([foreignTake]), 'unused');
    const w = workspace(built);
    writeFileSync(join(w.dir, 'clear.jsonl'), `${at(clearV2Log(theirs, ours), 0)}\n`);
    writeFileSync(join(w.dir, 'after.jsonl'), `${at(afterClearLog({ aliceOutput: E18, bobOutput: 20_000_000n, aliceInput: 20_000_000n, bobInput: E18 }), 1)}\n`);
    await ingestInProcess(w, join(w.dir, 'clear.jsonl'), 'ledger');
    const listed = JSON.parse(await stdoutOf(rejected, ['--json', ...storeArgs(w, 'ledger')])) as Record<string, unknown>[];
    expect(listed).toEqual([expect.objectContaining({ reason: 'unpaired_clear', blockNumber: '30000000', logIndex: 0, detail: expect.stringMatching(/^no AfterClear follows it in transaction 0x\w+, the ledger's last so far$/) })]);
    expect(await stdoutOf(rejected, storeArgs(w, 'ledger'))).toMatch(/\n30000000 +0 +0x\w+ +unpaired_clear +no AfterClear follows it/);

    expect(await ingestInProcess(w, join(w.dir, 'after.jsonl'), 'ledger')).toMatchObject({ appended: 1, outOfOrder: 0 });
    const result = await queries(w, 'ledger');
    expect(result.rejected).toEqual([]);
    expect(result.trades).toEqual([expect.objectContaining({ symbol: 'GME', side: 'BUY', shares: '1', party: 'bob', logIndex: 0 })]);
  });
});

describe('ingest-file on a file of valid and bad lines', () => {
  it('stores what the valid lines alone store, reports each bad line by number, accounts for every stored log', async () => {
    await fc.assert(fc.asyncProperty(planArb, (plan) => fuzzedFileHolds(plan, inProcess)), { numRuns: RUNS });
  }, TIMEOUT_MS);

  it('through the real binary: exit 0, no stack trace, the same summary and reports', async () => {
    await fc.assert(fc.asyncProperty(planArb, (plan) => fuzzedFileHolds(plan, throughBinary)), { numRuns: BINARY_RUNS });
  }, TIMEOUT_MS);
});
