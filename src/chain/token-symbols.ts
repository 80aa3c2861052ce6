/**
 * ERC20 `symbol()` read from the chain, for the tokens the ledger has not seen yet: one
 * multicall3 call where the chain has multicall3 (Base does; anvil does not), one eth_call per
 * token otherwise. A symbol that cannot be read (a revert, an invalid opcode or out of gas, no
 * contract, an answer that is no string or not UTF-8) is recorded as unknown with the reason and blocks nothing; a transport failure says
 * nothing about the token, so it is retried and, at the deadline, stops ingestion. An empty
 * answer at 'latest' is asked again at the block of the log that mentions the token: a node
 * lagging behind that block answers empty too, having no contract there yet.
 */
import * as E from 'fp-ts/lib/Either.js';
import { BaseError, LimitExceededRpcError, RpcRequestError, decodeAbiParameters, decodeErrorResult, decodeFunctionResult, encodeFunctionData, hexToBytes, bytesToHex, parseAbi, size, type Hex } from 'viem';
import { HexData } from '../domain/codecs.ts';
import type { Logger } from '../log.ts';
import type { TokenMetadata, TokenResolver } from '../services/ingester.ts';
import { RpcRefused, errorData, fromCodec, isRetryable, lagsBehind, nodeError, nodeWords, type ChainRpc, type Decoder } from './rpc.ts';

/** keccak256("symbol()")[0..4]. */
const SYMBOL_CALL: Hex = '0x95d89b41';
/** The same address on every chain that has it (mds1/multicall3). */
export const MULTICALL3: Hex = '0xca11bde05977b3631167028862be2a173976ca11';
const multicall3Abi = parseAbi([
  'struct Call3 { address target; bool allowFailure; bytes callData; }',
  'struct Result { bool success; bytes returnData; }',
  'function aggregate3(Call3[] calls) payable returns (Result[] returnData)',
]);

type Answer = { readonly ok: true; readonly data: Hex } | { readonly ok: false; readonly reason: string };

const hexData = fromCodec(HexData);

/** A node's "execution reverted" (JSON-RPC code 3, or the words): the token answered, with a refusal. */
const isRevert = (error: unknown): boolean => {
  const e = nodeError(error);
  return e instanceof BaseError && (e.walk((c) => (c as { code?: unknown }).code === 3) !== null || /revert/i.test(nodeWords(e)));
};

/**
 * How nodes word an EVM failure other than a revert: an invalid opcode (solc < 0.8's assert, an
 * old fallback's throw), running out of gas, a bad jump or stack, a RETURNDATACOPY past the data
 * returned, a memory offset past 2^64, a precompile refusing symbol()'s 4 bytes of input (an order
 * may list any address as a token) (geth, erigon, anvil/reth's revm, nethermind). The token's
 * code failed, as it will at every try: no transport failure.
 */
const EXECUTION_FAILED =
  /invalid opcode|InvalidFEOpcode|OpcodeNotFound|NotActivated|BadInstruction|out of gas|OutOfGas|stack (underflow|overflow|limit)|Stack(Underflow|Overflow)|invalid jump|InvalidJump|BadJumpDestination|return data out of bounds|OutOfOffset|AccessViolation|gas ?uint64 ?overflow|Precompile(Error|Failure)|bn256|elliptic curve|invalid input length/i;

/** The first line of what the node said, cut short: it goes into a reason, recorded for good. */
const firstWords = (e: BaseError): string => nodeWords(e).split('\n')[0]!.slice(0, 200);

/** The node's words for an EVM failure other than a revert, or null when the error is no such failure. */
const executionFailure = (error: unknown): string | null => {
  const e = nodeError(error);
  if (!(e instanceof BaseError)) return null;
  const text = firstWords(e);
  return EXECUTION_FAILED.test(text) ? text : null;
};

/** What no retry changes: the call ran, and the token's code refused or failed. */
const failedInToken = (error: unknown): boolean => isRevert(error) || executionFailure(error) !== null;

/** Retried: transport failures, not the token's own. */
const retryableCall = (e: unknown): boolean => !failedInToken(e) && isRetryable(e);

/** A rate limit answered as a JSON-RPC error (Infura's -32005, Alchemy's 429): says nothing about the block. */
const rateLimited = (e: BaseError): boolean => e.walk((c) => c instanceof LimitExceededRpcError || (c as { code?: unknown }).code === 429) !== null;

/**
 * The node answered the call with an error of its own (a JSON-RPC error in an HTTP 200), neither
 * its lag nor a rate limit: e.g. a pruned node without the block's state ("missing trie node").
 * Transport failures and HTTP error statuses say nothing about the block: they are retried.
 */
const refusedAtBlock = (error: unknown): boolean => {
  const e = nodeError(error);
  return e instanceof BaseError && !rateLimited(e) && !lagsBehind(e) && e.walk((c) => c instanceof RpcRequestError && c.status === undefined) !== null;
};

/** At a log's block, a node that lacks the block is retried like a transport failure; one that refuses to run there is not. */
const retryableAtBlock = (e: unknown): boolean => lagsBehind(e) || (!refusedAtBlock(e) && retryableCall(e));

/** The revert data a node attaches to its error (JSON-RPC `error.data`, or its "Reverted 0x…" words), if any. */
const revertData = (error: unknown): Hex => {
  const e = nodeError(error);
  const hex = /^(?:Reverted )?(0x[0-9a-fA-F]*)$/.exec((e instanceof BaseError ? errorData(e) : undefined) ?? '');
  return (hex?.[1] as Hex | undefined) ?? '0x';
};

/** A revert reason is the token's text too: as long as it likes, so cut short before it goes into an event. */
const MAX_REASON_CHARS = 200;

const revertReason = (data: Hex): string => {
  try {
    const decoded = decodeErrorResult({ abi: [], data });
    const text = decoded.args?.join(', ') ?? decoded.errorName;
    return `: ${text.length > MAX_REASON_CHARS ? `${text.slice(0, MAX_REASON_CHARS)}…` : text}`;
  } catch {
    return data === '0x' ? '' : ` with ${data.slice(0, 74)}`;
  }
};

/**
 * Real symbols are a few characters. A token can answer megabytes for little gas, and its
 * metadata event must stay far below EventStoreDB's 1 MiB event limit: past this it is unknown.
 */
const MAX_SYMBOL_BYTES = 64;

/** Refuses bytes that are not UTF-8, where a plain decoder would put U+FFFD in their place. */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The bytes32 some old tokens (MKR) return, without its zero padding. */
function bytes32Text(data: Hex): Uint8Array {
  const bytes = hexToBytes(data);
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return bytes.subarray(0, end);
}

/** A string, or the bytes32 some old tokens (MKR) return. */
function symbolOf(data: Hex): TokenMetadata {
  if (data === '0x') return { symbol: null, reason: 'symbol() returned no data: no contract at this address, or no symbol()' };
  let bytes: Uint8Array;
  try {
    // A string's ABI encoding is a bytes one's: its bytes are checked as UTF-8 below, not decoded lossily.
    bytes = size(data) === 32 ? bytes32Text(data) : hexToBytes(decodeAbiParameters([{ type: 'bytes' }], data)[0]);
  } catch (error) {
    return { symbol: null, reason: `symbol() answer is not a string: ${(error as Error).message.split('\n')[0]}` };
  }
  if (bytes.length > MAX_SYMBOL_BYTES) return { symbol: null, reason: `symbol() answer is ${bytes.length} bytes long, more than the ${MAX_SYMBOL_BYTES} a symbol may take` };
  let symbol: string;
  try {
    symbol = utf8.decode(bytes);
  } catch {
    return { symbol: null, reason: `symbol() answer is not UTF-8 text: ${bytesToHex(bytes.subarray(0, 32))}` };
  }
  return symbol === '' ? { symbol: null, reason: 'symbol() returned an empty string' } : { symbol, reason: null };
}

const metadataOf = (answer: Answer): TokenMetadata => (answer.ok ? symbolOf(answer.data) : { symbol: null, reason: answer.reason });

/**
 * One answer per call: a list of another length (a provider's garbage) would leave tokens without one, or give them another's.
 * No data at all (null) is what a call to an address without code answers: multicall3 is not there.
 */
const aggregate3Results =
  (calls: number): Decoder<readonly Answer[] | null> =>
  (u) =>
    E.chain((data: Hex): E.Either<string, readonly Answer[] | null> => {
      if (data === '0x') return E.right(null);
      let results: readonly { success: boolean; returnData: Hex }[];
      try {
        results = decodeFunctionResult({ abi: multicall3Abi, functionName: 'aggregate3', data });
      } catch (error) {
        return E.left(`aggregate3 answer does not decode: ${(error as Error).message.split('\n')[0]}`);
      }
      if (results.length !== calls) return E.left(`aggregate3 answered ${results.length} results for ${calls} calls`);
      return E.right(results.map((r): Answer => (r.success ? { ok: true, data: r.returnData } : { ok: false, reason: `symbol() reverted${revertReason(r.returnData)}` })));
    })(hexData(u));

export class ChainTokenResolver implements TokenResolver {
  /** Whether the chain has multicall3, as eth_getCode answered once; forgotten when aggregate3 says otherwise. */
  private multicall: Promise<boolean> | null = null;

  constructor(
    private readonly rpc: ChainRpc,
    private readonly log?: Logger,
  ) {}

  async resolve(tokens: ReadonlyMap<string, bigint>): Promise<ReadonlyMap<string, TokenMetadata>> {
    const addresses = [...tokens.keys()];
    const singly = () => Promise.all(addresses.map((a) => this.single(a, 'latest')));
    // aggregate3 itself fails when its tokens eat all its gas (endless loops, invalid opcodes): each token is then asked alone.
    const batch = (await this.hasMulticall()) ? await this.viaMulticall(addresses).catch((e: unknown) => (failedInToken(e) ? singly() : Promise.reject(e))) : await singly();
    const answers = batch ?? (await singly());
    return new Map(await Promise.all(addresses.map(async (address, i) => [address, await this.confirmed(address, answers[i]!, tokens.get(address)!)] as const)));
  }

  /** An empty answer at 'latest' may be a lagging node's, which has no contract there yet: it is asked again at the block of the log. */
  private async confirmed(address: string, answer: Answer, block: bigint): Promise<TokenMetadata> {
    if (!answer.ok || answer.data !== '0x') return metadataOf(answer);
    try {
      return metadataOf(await this.single(address, block));
    } catch (error) {
      // A backfill on a node without old state must not stall on a spam order's non-contract token: unknown, as the answer at 'latest' says.
      if (!(error instanceof RpcRefused && refusedAtBlock(error))) throw error;
      return { symbol: null, reason: `symbol() returned no data at latest, and block ${block}'s state is not available to confirm: ${firstWords(error.node as BaseError)}` };
    }
  }

  private hasMulticall(): Promise<boolean> {
    this.multicall ??= this.rpc.request('eth_getCode', [MULTICALL3, 'latest'], hexData, 'multicall3 code').then((code) => code !== '0x');
    return this.multicall;
  }

  /**
   * The tokens' answers in one aggregate3 call; null when multicall3 answered no data, as an address
   * without code does: the eth_getCode answer that sent the call there was wrong (a node's glitch,
   * cached for the process), so it is forgotten and asked again at the next lookup.
   */
  private async viaMulticall(addresses: readonly string[]): Promise<readonly Answer[] | null> {
    const calls = addresses.map((target) => ({ target: target as Hex, allowFailure: true, callData: SYMBOL_CALL }));
    const data = encodeFunctionData({ abi: multicall3Abi, functionName: 'aggregate3', args: [calls] });
    const answers = await this.rpc.request('eth_call', [{ to: MULTICALL3, data }, 'latest'], aggregate3Results(calls.length), `symbol() of ${addresses.length} tokens via multicall3`, retryableCall);
    if (answers === null) {
      this.multicall = null;
      this.log?.warn({ tokens: addresses.length }, 'multicall3 answered no data, though eth_getCode said it is there: reading these symbols one call per token, and asking for its code again next time');
    }
    return answers;
  }

  /** `symbol()` of one token, at 'latest' or at a log's block. */
  private async single(address: string, at: 'latest' | bigint): Promise<Answer> {
    const call =
      at === 'latest'
        ? { block: 'latest', what: `symbol() of ${address}`, retryable: retryableCall }
        : { block: `0x${at.toString(16)}`, what: `symbol() of ${address} at block ${at}, where a log mentions it`, retryable: retryableAtBlock };
    try {
      return { ok: true, data: await this.rpc.request('eth_call', [{ to: address, data: SYMBOL_CALL }, call.block], hexData, call.what, call.retryable) };
    } catch (error) {
      if (isRevert(error)) return { ok: false, reason: `symbol() reverted${revertReason(revertData(error))}` };
      const failure = executionFailure(error);
      if (failure === null) throw error;
      return { ok: false, reason: `symbol() failed: ${failure}` };
    }
  }
}
