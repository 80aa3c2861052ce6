/**
 * JSON-RPC through viem transports, answers kept raw (hex, as the node sent them) and decoded
 * with io-ts at this boundary. Every call is retried with backoff under one deadline; viem's own
 * retries are off so there is one retry policy. Endpoints are named by origin only in errors and
 * logs: their paths and queries often hold API keys.
 */
import * as t from 'io-ts';
import * as E from 'fp-ts/lib/Either.js';
import {
  BaseError,
  HttpRequestError,
  InvalidParamsRpcError,
  MethodNotFoundRpcError,
  MethodNotSupportedRpcError,
  ResponseBodyTooLargeError,
  RpcRequestError,
  createPublicClient,
  fallback,
  http,
  webSocket,
  type PublicClient,
  type Transport,
} from 'viem';
import { socketClientCache } from 'viem/utils';
import { Hash32, HexQuantity, SafeHexQuantity, describeErrors } from '../domain/codecs.ts';
import type { Logger } from '../log.ts';
import { DeadlineExceeded, backoff, retrying, type Backoff } from './retry.ts';

export type Decoder<T> = (u: unknown) => E.Either<string, T>;

/** An answer that does not have the shape the JSON-RPC spec gives it: retried (another attempt or endpoint may do better), then fatal. */
export class MalformedRpcResponse extends Error {
  override readonly name = 'MalformedRpcResponse';
}

/** What an endpoint (by scheme and host) answered to eth_chainId. */
export interface ServedChain {
  readonly endpoint: string;
  readonly chainId: bigint;
}

/** The endpoints serve another chain than the configured one (each asked again first: a one-off answer is a balancer's glitch). */
export class ChainIdMismatch extends Error {
  override readonly name = 'ChainIdMismatch';

  constructor(
    readonly served: readonly ServedChain[],
    configured: number,
  ) {
    super(`RPC ${served.map((s) => `${s.endpoint} serves chain ${s.chainId}`).join(', ')}, but the configured chainId is ${configured} (LEDGER_CHAIN_ID)`);
  }
}

/**
 * A node's refusal no retry fixes (a 404, an unknown method, invalid params, a revert). The
 * node's own error is kept for classifying it, but privately, not as the `cause` a log
 * serializer prints: viem's messages carry the endpoint's URL, and its API key.
 */
export class RpcRefused extends Error {
  override readonly name = 'RpcRefused';
  readonly #node: unknown;

  constructor(message: string, node: unknown) {
    super(message);
    this.#node = node;
  }

  get node(): unknown {
    return this.#node;
  }
}

/** The node's error behind a refusal, for classifying it. */
export const nodeError = (e: unknown): unknown => (e instanceof RpcRefused ? e.node : e);

/**
 * What the node said about a failed call: its message, and the text some nodes put in `data`
 * instead (older Nethermind: "VM execution error." with data "BadInstruction" or "Reverted 0x…").
 * Revert data proper (hex) says nothing in words.
 */
export const nodeWords = (e: BaseError): string => {
  const data = errorData(e);
  return data === undefined || data.startsWith('0x') ? (e.details ?? '') : `${e.details ?? ''} ${data}`;
};

/** The `data` a node attached to its error (JSON-RPC `error.data`), when it is text. */
export const errorData = (e: BaseError): string | undefined => (e.walk((c) => typeof (c as { data?: unknown }).data === 'string') as { data?: string } | null)?.data;

/**
 * How nodes say they do not have a block (yet): the node behind the load balancer lags behind
 * the one that reported it. geth and reth "header not found", besu and reth "block not found", erigon
 * "Unknown block" or "block … not available (head block: N)", nethermind "… could not be
 * found", anvil "BlockOutOfRangeError: block height is 4 but requested was 100" (code -32602);
 * an RPC gateway "upstream does not have the requested block yet" (-32603), nethermind also
 * "Block is not available" (-32002). Token symbols (at a log's block) and logs by block hash ask
 * again on these words; unlisted ones would record a real token unknown for good, or stop ingestion.
 */
const BLOCK_NOT_YET = /header not found|block not found|unknown block|could not be found|\(head block: \d+\)|BlockOutOfRange|does not have the requested block|block is not available/i;

export const lagsBehind = (error: unknown): boolean => {
  const e = nodeError(error);
  return e instanceof BaseError && BLOCK_NOT_YET.test(nodeWords(e));
};

export const endpointLabel = (url: string): string => {
  try {
    const { protocol, host } = new URL(url);
    return `${protocol}//${host}`;
  } catch {
    return '<unparsable URL>';
  }
};

export const fromCodec =
  <T>(codec: t.Type<T, unknown, unknown>): Decoder<T> =>
  (u) =>
    E.mapLeft((errors: t.Errors) => {
      const { path, reason } = describeErrors(errors);
      return `${path ? `at ${path}: ` : ''}${reason}`;
    })(codec.decode(u));

// A block number past 2^53 is no block's (as in a log): a scan to it would never end.
const BlockRefCodec = t.type({ number: SafeHexQuantity, hash: Hash32 });
export type BlockRef = t.TypeOf<typeof BlockRefCodec>;
export type BlockTag = 'latest' | 'safe' | 'finalized';

/** Each endpoint's timeout within an attempt (at most the deadline, which bounds the whole call all the same). */
const ENDPOINT_TIMEOUT_MS = 30_000;

/**
 * How many times in one call an endpoint must give an answer that would stop or idle ingestion
 * (another chain's id, no safe block) before it is believed, asked again with the calls' backoff
 * from the next endpoint: fewer are a load balancer's glitch, and an endpoint that means it is
 * still told apart within a second or two, not at the RPC deadline.
 */
export const DOUBTED_ANSWERS = 5;

const maybeBlock = fromCodec(t.union([BlockRefCodec, t.null]));

/**
 * A block answer (null: no such block) that, asked for by number, must be of that number: another
 * one's hash would vouch for (or against) the wrong block, and its number be taken for the head's.
 */
export const numberedBlock =
  <B extends { readonly number: bigint }>(maybe: Decoder<B | null>, at: bigint | BlockTag): Decoder<B | null> =>
  (u) =>
    E.chain((ref: B | null) => (ref !== null && typeof at === 'bigint' && ref.number !== at ? E.left(`asked for block ${at}, got block ${ref.number}`) : E.right(ref)))(maybe(u));

/**
 * Providers' words for a range or an answer too large. Ankr says "maximum [from, to] blocks distance: N"
 * (-32000), proxyd (the public Base RPC) "backend response too large": unmatched, such a refusal was
 * retried as it was up to the deadline, stopping ingestion.
 */
const RANGE_TOO_LARGE =
  /too many (results|logs|blocks)|more than \d+ (results|logs)|range (is )?too (large|wide|big)|exceeds? (the )?(max|maximum|limit)|block range|blocks distance|response size|size exceeded|response (is )?too (large|big)|limited to/i;

/**
 * node's code for a request that reached no server (ECONNREFUSED: a wrong port; ENOTFOUND: a wrong host), from deep
 * in fetch's causes (`fetch failed` says neither); only the code: the causes' messages quote the host and port.
 */
const connectionCode = (e: HttpRequestError): string | undefined => {
  let cause: unknown = e.cause;
  for (let depth = 0; cause instanceof Error && depth < 4; depth++, cause = cause.cause) {
    const { code } = cause as NodeJS.ErrnoException;
    if (typeof code === 'string' && /^(E[A-Z]+|UND_ERR_[A-Z_]+)$/.test(code)) return code;
  }
  return undefined;
};

/** What went wrong, on one line, before masking (viem's full messages carry more: the request, the URL). */
const errorText = (e: unknown): string => {
  if (e instanceof HttpRequestError) {
    const code = e.status === undefined ? connectionCode(e) : undefined;
    return `HTTP ${e.status ?? 'request failed'}: ${e.details}${code === undefined ? '' : ` (${code})`}`;
  }
  // Some of viem's errors have no details (ResponseBodyTooLargeError): no "undefined" for them.
  if (e instanceof BaseError) return e.details === undefined ? e.shortMessage : `${e.shortMessage} ${e.details}`;
  return e instanceof Error ? e.message.split('\n')[0]! : String(e);
};

/**
 * A URL as written and as viem quotes it once parsed (normalized, a user:password moved into a
 * header), and the parts of it a server quotes back (Express: "Cannot POST /v2/<key>"; a proxy
 * naming the request target): its path and its query, each alone and together.
 */
const spellings = (url: string): string[] => {
  if (!URL.canParse(url)) return [url];
  const parsed = new URL(url);
  const { href, pathname, search } = parsed;
  parsed.username = parsed.password = '';
  const quotedBack = [`${pathname}${search}`, search, pathname].filter((part) => part !== '' && part !== '/');
  return [url, href, parsed.href, ...quotedBack];
};

/**
 * `errorText` with every endpoint URL in it replaced by its scheme and host: viem's details can
 * quote the URL ("Failed to parse URL from …"), and its API key with it.
 */
const maskedErrorText = (urls: readonly string[]): ((e: unknown) => string) => {
  const masks = urls.flatMap((url) => spellings(url).map((spelt) => [spelt, endpointLabel(url)] as const)).sort(([a], [b]) => b.length - a.length);
  return (e) => masks.reduce((text, [spelt, label]) => text.replaceAll(spelt, label), errorText(e)).slice(0, 300);
};

/**
 * The HTTP status of a failed call's answer, if it was not 2xx. A JSON-RPC error in such an answer (Alchemy's 401
 * "Must be authenticated!") comes as viem's class for its code, the status on the RpcRequestError it wraps.
 */
const httpStatus = (e: BaseError): number | undefined =>
  (e.walk((c) => (c instanceof HttpRequestError || c instanceof RpcRequestError) && c.status !== undefined) as { status?: number } | null)?.status;

/** The provider refuses the block range or the size of the answer: a smaller range may pass. */
export const isRangeTooLarge = (error: unknown): boolean => {
  const e = nodeError(error);
  return e instanceof ResponseBodyTooLargeError || (e instanceof BaseError && (httpStatus(e) === 413 || RANGE_TOO_LARGE.test(errorText(e))));
};

/** An HTTP 4xx other than a timeout or a rate limit: a wrong URL or a refused key, which no retry fixes. */
const isClientError = (e: BaseError): boolean => {
  const status = httpStatus(e);
  return status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429;
};

/** Transport failures, timeouts, rate limits, server errors and malformed answers are retried; refusals that will not change are not. */
export const isRetryable = (e: unknown): boolean =>
  e instanceof MalformedRpcResponse ||
  (e instanceof BaseError &&
    !(e instanceof MethodNotFoundRpcError || e instanceof MethodNotSupportedRpcError || e instanceof InvalidParamsRpcError) &&
    !isClientError(e) &&
    !isRangeTooLarge(e));

export const isWebSocket = (url: string): boolean => /^wss?:/.test(url);

/**
 * viem's own reconnecting of a websocket is off: it gives up after 5 tries, 2 s apart, and its
 * socket then fails every call until it times out, for as long as the process runs. A call that
 * fails drops dead sockets instead (closeDeadSockets), so the call's retry connects afresh; the
 * newHeads subscription does the same (new-heads.ts).
 */
const transportOf = (url: string, timeout: number): Transport =>
  answering(url, isWebSocket(url) ? connectingOnce(url, webSocket(url, { retryCount: 0, timeout, reconnect: false })) : httpTransport(url, timeout));

/**
 * viem refuses an HTTP answer over 10 MiB (ResponseBodyTooLargeError), and the scanner splits a range refused so. One
 * block's logs cannot be split, and anyone can fill a block with the orderbook's logs (a take of their own order with
 * megabytes of signed context): refused, that block would stop ingestion for good. So one block's eth_getLogs answer is
 * read whatever its size, which the block's gas limit bounds (log data costs 8 gas a byte).
 */
function httpTransport(url: string, timeout: number): Transport {
  const bounded = http(url, { retryCount: 0, timeout });
  const whole = http(url, { retryCount: 0, timeout, maxResponseBodySize: false });
  return (params) => {
    const [limited, unlimited] = [bounded(params), whole(params)];
    const request = (args: Parameters<typeof limited.request>[0], options?: Parameters<typeof limited.request>[1]) =>
      (isOneBlockOfLogs(args) ? unlimited : limited).request(args, options);
    return { ...limited, request: request as typeof limited.request };
  };
}

/** An eth_getLogs call for one block: by its hash, or a range from a block to itself. */
function isOneBlockOfLogs({ method, params }: { method: string; params?: unknown }): boolean {
  const filter = method === 'eth_getLogs' && Array.isArray(params) ? (params[0] as { blockHash?: unknown; fromBlock?: unknown; toBlock?: unknown } | undefined) : undefined;
  return filter !== undefined && (filter.blockHash !== undefined || (filter.fromBlock !== undefined && filter.fromBlock === filter.toBlock));
}

/** An answer and the endpoint (scheme and host) that gave it: behind viem's fallback, any of the endpoints may have. */
interface Answered<T> {
  readonly endpoint: string;
  readonly value: T;
}

/** The transport, its answers tagged with its endpoint (viem's fallback hands an answer on as it is). */
function answering(url: string, transport: Transport): Transport {
  const endpoint = endpointLabel(url);
  return (params) => {
    const made = transport(params);
    const request = async (args: Parameters<typeof made.request>[0], options?: Parameters<typeof made.request>[1]): Promise<Answered<unknown>> => ({ endpoint, value: await made.request(args, options) });
    return { ...made, request: request as typeof made.request };
  };
}

/**
 * Sockets still connecting, by URL. viem keeps a socket where closeSockets finds it (socketClientCache) only once it is
 * open: one closed while connecting (a SIGTERM during the ingester's start, its eth_chainId call aborted) opened
 * afterwards and stayed open, keeping the process alive until the shutdown timeout (exit 1). And a second call made
 * while the first one's socket connects, in another tick, had viem open another socket, the first one then out of
 * the cache and never closed. So every call waits for the URL's socket to be open first, calls sharing one connection
 * (a connection that fails is left to the call itself, which then reports it as viem does).
 */
const connecting = new Map<string, Promise<{ close(): void }>>();

function connectingOnce(url: string, transport: Transport): Transport {
  return (params) => {
    const made = transport(params);
    const open = (): Promise<{ close(): void }> => {
      const pending = connecting.get(url);
      if (pending !== undefined) return pending;
      const connected = (made.value as { getRpcClient(): Promise<{ close(): void }> }).getRpcClient().finally(() => {
        if (connecting.get(url) === connected) connecting.delete(url);
      });
      connecting.set(url, connected);
      return connected;
    };
    const request: typeof made.request = async (args, options) => {
      // A socket that cannot connect is the call's own failure, in viem's terms (retried like any transport failure).
      await open().catch(() => undefined);
      return made.request(args, options);
    };
    return { ...made, request };
  };
}

/**
 * HTTP endpoints first (cheaper for large answers), websockets after; viem falls back in that
 * order when a transport fails. One transport per endpoint to start from, the order rotated:
 * viem never falls back for an answer that fails decoding, so ChainRpc moves on itself.
 */
function transportsFor(urls: readonly string[], timeout: number): Transport[] {
  const ordered = [...urls.filter((u) => !isWebSocket(u)), ...urls.filter(isWebSocket)];
  const transports = ordered.map((u) => transportOf(u, timeout));
  if (transports.length === 1) return transports;
  return transports.map((_, i) => fallback([...transports.slice(i), ...transports.slice(0, i)], { retryCount: 0 }));
}

export interface RpcOptions {
  readonly urls: readonly string[];
  readonly chainId: number;
  readonly deadlineMs: number;
  readonly log: Logger;
  readonly random?: () => number;
  readonly signal?: AbortSignal;
  /** Told of every failed attempt that is retried (the service counts them in its metrics). */
  readonly onRetry?: (error: unknown) => void;
}

type RawRequest = (args: { method: string; params: readonly unknown[] }, options: { signal: AbortSignal }) => Promise<Answered<unknown>>;

export class ChainRpc {
  readonly label: string;
  private readonly backoff: Backoff;
  /** By the endpoint each starts from (see transportsFor). */
  private readonly raws: readonly RawRequest[];
  /** Where calls start: moved on to the next endpoint when one answers malformed, which a retry there would get again. */
  private preferred = 0;
  /** The only way an error reaches a message or a log line from here. */
  private readonly errorText: (e: unknown) => string;

  private constructor(
    private readonly options: RpcOptions,
    clients: readonly PublicClient[],
  ) {
    this.label = options.urls.map(endpointLabel).join(', ');
    this.backoff = backoff(options.deadlineMs, options.random);
    this.raws = clients.map((client) => client.request as unknown as RawRequest);
    this.errorText = maskedErrorText(options.urls);
  }

  /**
   * Connects and checks each endpoint serves the configured chain, all at once. One that keeps answering another chain,
   * or fails (down, refusing, answering garbage), is passed over (and reported) if another serves the configured one; if
   * none does, the first failure in the configured order, else ChainIdMismatch naming each endpoint.
   */
  static async connect(options: RpcOptions): Promise<ChainRpc> {
    const timeout = Math.min(ENDPOINT_TIMEOUT_MS, options.deadlineMs);
    const wait = new EndpointWait();
    const checks = await Promise.all(options.urls.map((url) => ChainRpc.checkEndpoint(url, options, timeout, wait)));
    const serving = checks.flatMap((check) => (check.kind === 'serves' ? [check.url] : []));
    try {
      options.signal?.throwIfAborted(); // stopped while asking: nothing to start
      if (serving.length === 0) throw noneServing(checks, options.chainId);
    } catch (error) {
      closeSockets(options.urls);
      throw error;
    }
    reportPassedOver(checks, options, maskedErrorText(options.urls));
    closeSockets(options.urls.filter((url) => !serving.includes(url)));
    return new ChainRpc({ ...options, urls: serving }, transportsFor(serving, timeout).map((transport) => createPublicClient({ transport })));
  }

  /** Asks one endpoint, on its own, its chain id (see `checkChainId`); never rejects. */
  private static async checkEndpoint(url: string, options: RpcOptions, timeout: number, wait: EndpointWait): Promise<EndpointCheck> {
    const check = new AbortController();
    const stop = () => check.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', stop, { once: true });
    if (options.signal?.aborted === true) stop(); // a listener added after the abort never fires
    let lastFailure: unknown;
    const onRetry = (error: unknown) => {
      options.onRetry?.(error);
      if (error instanceof ChainIdMismatch) return; // an answer, asked again: not a failing endpoint
      lastFailure = error;
      wait.failed(check);
    };
    const alone = new ChainRpc({ ...options, urls: [url], signal: check.signal, onRetry }, [createPublicClient({ transport: transportOf(url, timeout) })]);
    try {
      await alone.checkChainId();
      wait.serves();
      return { url, kind: 'serves' };
    } catch (error) {
      if (error instanceof ChainIdMismatch) return { url, kind: 'other', served: error.served };
      // Given up on: why it failed, not the abort.
      return { url, kind: 'failed', error: check.signal.aborted && lastFailure !== undefined ? lastFailure : error };
    } finally {
      options.signal?.removeEventListener('abort', stop);
    }
  }

  /** The endpoints it uses: the configured ones, less those passed over at connect (serving another chain, or failing). */
  get urls(): readonly string[] {
    return this.options.urls;
  }

  /**
   * Throws ChainIdMismatch, naming the endpoint that answered, unless it serves the configured chain. Checked at
   * connect, and again before blocks missing from the chain are taken for a reorg: an endpoint
   * can start serving another network under its URL, whose chain has none of the ledger's blocks.
   * Another chain's id is asked again (see `doubting`).
   */
  async checkChainId(): Promise<void> {
    const configured = BigInt(this.options.chainId);
    const read = async () => {
      const { endpoint, value: served } = await this.answered('eth_chainId', [], fromCodec(HexQuantity), 'eth_chainId', isRetryable);
      if (served !== configured) throw new ChainIdMismatch([{ endpoint, chainId: served }], this.options.chainId);
    };
    await this.doubting('eth_chainId', read, (e) => e instanceof ChainIdMismatch, 'RPC endpoint answered another chain id; asking again');
  }

  /** Closes the websockets of its endpoints (viem keeps them open, reconnecting, for the whole process otherwise). */
  close(): void {
    closeSockets(this.options.urls);
  }

  /** One JSON-RPC call and the decoding of its answer, retried together; a refusal becomes RpcRefused. */
  async request<T>(method: string, params: readonly unknown[], decode: Decoder<T>, what = method, retryable = isRetryable): Promise<T> {
    return (await this.answered(method, params, decode, what, retryable)).value;
  }

  /** `request`, with the endpoint that answered. */
  private async answered<T>(method: string, params: readonly unknown[], decode: Decoder<T>, what: string, retryable: (e: unknown) => boolean): Promise<Answered<T>> {
    try {
      return await this.retried(method, params, decode, `${what} from ${this.label}`, retryable);
    } catch (error) {
      throw error instanceof BaseError ? new RpcRefused(`${what} from ${this.label}: ${this.errorText(error)}`, error) : error;
    }
  }

  private retried<T>(method: string, params: readonly unknown[], decode: Decoder<T>, what: string, retryable: (e: unknown) => boolean): Promise<Answered<T>> {
    const call = async (signal: AbortSignal) => {
      const from = this.preferred;
      const { endpoint, value: result } = await this.raws[from]!({ method, params }, { signal }).catch((error: unknown) => {
        closeDeadSockets(this.options.urls);
        throw error;
      });
      const answer = decode(result);
      if (E.isLeft(answer)) {
        this.passOver(from);
        throw new MalformedRpcResponse(`malformed answer: ${answer.left}`);
      }
      return { endpoint, value: answer.right };
    };
    return retrying(what, call, {
      backoff: this.backoff,
      retryable,
      signal: this.options.signal,
      describe: this.errorText,
      onRetry: (error, attempt, delayMs) => {
        this.options.log.warn({ method, endpoints: this.label, attempt, delayMs: Math.round(delayMs), error: this.errorText(error) }, 'RPC call failed; retrying');
        this.options.onRetry?.(error);
      },
    });
  }

  /**
   * Calls start from the endpoint after `from`, the one that answered malformed. After that one, not after
   * `preferred`: calls in flight that all got garbage from it move on once, not past a good endpoint.
   */
  private passOver(from: number): void {
    this.preferred = (from + 1) % this.raws.length;
  }

  blockNumber(): Promise<bigint> {
    return this.request('eth_blockNumber', [], fromCodec(SafeHexQuantity));
  }

  /** The block's number and hash; null when the node has no such block (yet, or any more). */
  block(at: bigint | BlockTag): Promise<BlockRef | null> {
    const id = typeof at === 'bigint' ? `0x${at.toString(16)}` : at;
    return this.request('eth_getBlockByNumber', [id, false], numberedBlock(maybeBlock, at), `block ${at}`);
  }

  /**
   * `read`, a few calls whose answers must agree, done again (with the calls' backoff, under one
   * deadline, from the next endpoint) while they disagree: `read` throws MalformedRpcResponse when they do.
   */
  consistent<T>(what: string, read: () => Promise<T>): Promise<T> {
    return this.askedAgain(what, read, { retryable: (e) => e instanceof MalformedRpcResponse, message: 'RPC answers disagree; asking again' });
  }

  /**
   * `read`, done again (from the next endpoint, with the calls' backoff, under one deadline) while
   * it throws an answer `doubted` picks, up to DOUBTED_ANSWERS of them: then, or when the deadline
   * cuts the asking short, that answer is thrown as it is.
   */
  async doubting<T>(what: string, read: () => Promise<T>, doubted: (e: unknown) => boolean, message: string): Promise<T> {
    let times = 0;
    let last: unknown = null;
    const once = async () => {
      last = null;
      try {
        return await read();
      } catch (error) {
        if (doubted(error)) [times, last] = [times + 1, error];
        throw error;
      }
    };
    try {
      return await this.askedAgain(what, once, { retryable: (e) => doubted(e) && times < DOUBTED_ANSWERS, message });
    } catch (error) {
      throw error instanceof DeadlineExceeded && last !== null ? last : error;
    }
  }

  /** `read` done again, from the next endpoint, with the calls' backoff under one deadline, while it fails with an error `again` takes (a pure test). */
  private askedAgain<T>(what: string, read: () => Promise<T>, again: { readonly retryable: (e: unknown) => boolean; readonly message: string }): Promise<T> {
    const once = async () => {
      const from = this.preferred;
      try {
        return await read();
      } catch (error) {
        if (again.retryable(error)) this.passOver(from);
        throw error;
      }
    };
    return retrying(`${what} from ${this.label}`, once, {
      backoff: this.backoff,
      retryable: again.retryable,
      signal: this.options.signal,
      describe: this.errorText,
      onRetry: (error, attempt, delayMs) => {
        this.options.log.warn({ what, endpoints: this.label, attempt, delayMs: Math.round(delayMs), error: this.errorText(error) }, again.message);
        this.options.onRetry?.(error);
      },
    });
  }
}

/** What asking one endpoint its chain id at connect found: it serves the configured chain, another one, or its calls failed. */
type EndpointCheck =
  | { readonly url: string; readonly kind: 'serves' }
  | { readonly url: string; readonly kind: 'other'; readonly served: readonly ServedChain[] }
  | { readonly url: string; readonly kind: 'failed'; readonly error: unknown };

/**
 * Connect's wait for its endpoints. Once one serves the configured chain, one whose call has failed is given up on at
 * once: waiting until its deadline (two minutes by default) would hold up the start for an endpoint that is down. Until
 * then every endpoint is waited for, since none may serve it; and one that answers is always waited for, so that one
 * serving another chain is told apart (see `doubting`).
 */
class EndpointWait {
  private served = false;
  private readonly failing = new Set<AbortController>();

  /** An endpoint's call failed and is retried: its check stops now if another endpoint serves the chain, else once one does. */
  failed(check: AbortController): void {
    if (this.served) check.abort();
    else this.failing.add(check);
  }

  serves(): void {
    this.served = true;
    for (const check of this.failing) check.abort();
  }
}

/** Why no endpoint can be used: the first one (in the configured order) whose calls failed, named in its error; else each chain served. */
function noneServing(checks: readonly EndpointCheck[], chainId: number): unknown {
  const failed = checks.find((check) => check.kind === 'failed');
  return failed !== undefined ? failed.error : new ChainIdMismatch(checks.flatMap((check) => (check.kind === 'other' ? check.served : [])), chainId);
}

/** A warn line for each endpoint left out, named by scheme and host, its error masked. */
function reportPassedOver(checks: readonly EndpointCheck[], { log, chainId }: RpcOptions, errorText: (e: unknown) => string): void {
  for (const check of checks) {
    if (check.kind === 'failed') {
      log.warn({ endpoint: endpointLabel(check.url), chainId, error: errorText(check.error) }, 'an RPC endpoint is unavailable; passed over until the ingester starts again');
    } else if (check.kind === 'other') {
      for (const { endpoint, chainId: served } of check.served) log.warn({ endpoint, servedChainId: String(served), chainId }, 'an RPC endpoint serves another chain; passed over');
    }
  }
}

/** viem shares one socket per websocket URL and options; close every one open to these URLs. */
export function closeSockets(urls: readonly string[]): void {
  for (const socket of socketClientCache.values()) if (urls.includes(socket.url)) socket.close();
  // Those still connecting, once open (see `connecting`).
  for (const [url, pending] of connecting) if (urls.includes(url)) pending.then((socket) => socket.close(), () => undefined);
}

/** Closes (and so forgets) the sockets to these URLs that are no longer open: the next call opens a new one. */
export function closeDeadSockets(urls: readonly string[]): void {
  for (const client of socketClientCache.values()) {
    const { readyState } = client.socket as unknown as { readonly readyState: number };
    if (urls.includes(client.url) && readyState !== WEBSOCKET_OPEN) client.close();
  }
}

/** WebSocket.OPEN: Node 20 has no WebSocket global to read it from. */
const WEBSOCKET_OPEN = 1;
