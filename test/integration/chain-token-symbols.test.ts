/**
 * ChainTokenResolver against a real anvil node, with tokens whose symbol() misbehaves: code
 * put at an address with anvil_setCode (no deployment needed). A token's bad answer is the
 * token's, recorded as unknown with a reason; it must never stop ingestion. And behind a proxy
 * playing a node that lags behind the log that mentions a real token (no data at 'latest'):
 * that token must get its symbol, or ingestion stop, never be recorded as unknown.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeFunctionResult, encodeAbiParameters, encodeFunctionResult, parseAbi, type Hex } from 'viem';
import { startAnvil, type Anvil } from '../../src/chain/devnet/index.ts';
import { ChainRpc } from '../../src/chain/rpc.ts';
import { ChainTokenResolver, MULTICALL3 } from '../../src/chain/token-symbols.ts';
import { streams } from '../../src/domain/events.ts';
import { openStore } from '../../src/eventstore/url.ts';
import { Ingester } from '../../src/services/ingester.ts';
import { installMulticall3 } from '../support/chain-multicall.ts';
import { RpcErrorAnswer, startRpcProxy, type JsonRpcCall } from '../support/chain-proxy.ts';
import { History, ORDERBOOK, OUR_OWNER, io, takeOrderV2Log } from '../support/orderbook-logs.ts';
import { capturedLog, testLog } from '../support/test-log.ts';

/** Runtime code that returns `data` (copied from the code's own tail) to any call. */
const returning = (data: Hex): Hex => {
  const length = (data.length - 2) / 2;
  const len = length.toString(16).padStart(4, '0');
  // PUSH2 len, PUSH2 15 (offset of data), PUSH1 0, CODECOPY, PUSH2 len, PUSH1 0, RETURN
  return `0x61${len}61000f60003961${len}6000f3${data.slice(2)}`;
};

/** Runtime code that reverts with `data` (copied from the code's own tail) to any call. */
const reverting = (data: Hex): Hex => {
  const len = ((data.length - 2) / 2).toString(16).padStart(4, '0');
  return `0x61${len}61000f60003961${len}6000fd${data.slice(2)}`; // as returning, ending in REVERT
};
/** Revert data for `revert(reason)`: Error(string). */
const errorString = (reason: string): Hex => `0x08c379a0${encodeAbiParameters([{ type: 'string' }], [reason]).slice(2)}`;

const INVALID_OPCODE: Hex = '0xfe'; // solc < 0.8 assert(), or a fallback that throws the old way
const ENDLESS_LOOP: Hex = '0x5b600056'; // JUMPDEST PUSH1 0 JUMP: runs out of gas
const RETURNDATACOPY_PAST_END: Hex = '0x6001600060003e00'; // PUSH1 1 PUSH1 0 PUSH1 0 RETURNDATACOPY STOP: 1 byte of no return data
/** An ABI `string` answer holding these bytes as they are (valid UTF-8 or not): ABI-encoded like `bytes`. */
const stringOfBytes = (bytes: Hex): Hex => encodeAbiParameters([{ type: 'bytes' }], [bytes]);
const bytes32 = (text: string): Hex => `0x${Buffer.from(text, 'latin1').toString('hex').padEnd(64, '0')}`;
const text = (s: string): Hex => stringOfBytes(`0x${Buffer.from(s).toString('hex')}`);

const aggregate3 = parseAbi(['struct Result { bool success; bytes returnData; }', 'function aggregate3((address, bool, bytes)[] calls) returns (Result[])']);
/** The block an eth_call was asked at. */
const blockOf = (call: JsonRpcCall): unknown => (call.params as readonly unknown[] | undefined)?.[1];
const atLatest = (method: string, call: JsonRpcCall): boolean => method === 'eth_call' && blockOf(call) === 'latest';
const atBlock = (method: string, call: JsonRpcCall): boolean => method === 'eth_call' && blockOf(call) !== 'latest';

/**
 * A node behind the block of the log that mentions the tokens: it has no contract at their
 * addresses yet, so it answers every eth_call at 'latest' with no data, and aggregate3 with
 * success and no data for each call.
 */
const lagging = (method: string, result: unknown, call: JsonRpcCall): unknown => {
  if (!atLatest(method, call)) return result;
  if (call.params?.[0]?.to !== MULTICALL3) return '0x';
  const results = decodeFunctionResult({ abi: aggregate3, functionName: 'aggregate3', data: result as Hex });
  return encodeFunctionResult({ abi: aggregate3, functionName: 'aggregate3', result: results.map(() => ({ success: true, returnData: '0x' as Hex })) });
};
const HEADER_NOT_FOUND = new RpcErrorAnswer({ code: -32000, message: 'header not found' });
/** anvil's first dev account: an EOA, no contract at any block. */
const EOA = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';
const NO_DATA = 'symbol() returned no data: no contract at this address, or no symbol()';

describe('ChainTokenResolver with misbehaving tokens', () => {
  let anvil: Anvil;
  let rpc: ChainRpc;
  let next = 0x1000;

  beforeAll(async () => {
    anvil = await startAnvil();
    rpc = await ChainRpc.connect({ urls: [anvil.rpcUrl], chainId: anvil.chainId, deadlineMs: 3_000, log: testLog() });
  });
  afterAll(async () => {
    rpc?.close();
    await anvil?.stop();
  });

  /** The tokens as the ingester hands them over, each with the block of a log that mentions it: here the head. */
  const mentioned = async (...addresses: string[]): Promise<Map<string, bigint>> => {
    const head = await rpc.blockNumber();
    return new Map(addresses.map((a) => [a, head]));
  };

  /** A fresh address holding `code`. */
  const token = async (code: Hex): Promise<string> => {
    const address = `0x${(next++).toString(16).padStart(40, '0')}`;
    await anvil.request('anvil_setCode', [address, code]);
    return address;
  };

  it('records a token whose symbol() hits an invalid opcode or runs out of gas as unknown, without retrying to the deadline', async () => {
    const invalid = await token(INVALID_OPCODE);
    const looping = await token(ENDLESS_LOOP);
    const mkr = await token(returning(bytes32('MKR')));
    const started = performance.now();
    const resolved = await new ChainTokenResolver(rpc).resolve(await mentioned(invalid, looping, mkr));
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(resolved.get(invalid)).toEqual({ symbol: null, reason: expect.stringMatching(/^symbol\(\) failed: .*InvalidFEOpcode/) });
    expect(resolved.get(looping)).toEqual({ symbol: null, reason: expect.stringMatching(/^symbol\(\) failed: .*OutOfGas/) });
    expect(resolved.get(mkr)).toEqual({ symbol: 'MKR', reason: null });
  });

  it('records a token whose symbol() copies past the data its last call returned (RETURNDATACOPY out of bounds) as unknown, without retrying to the deadline', async () => {
    const outOfBounds = await token(RETURNDATACOPY_PAST_END);
    const started = performance.now();
    const resolved = await new ChainTokenResolver(rpc).resolve(await mentioned(outOfBounds));
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(resolved.get(outOfBounds)).toEqual({ symbol: null, reason: expect.stringMatching(/^symbol\(\) failed: .*OutOfOffset/) });
  });

  it('records a "token" at a precompile\'s address, which refuses symbol()\'s 4 bytes of input, as unknown, without retrying to the deadline', async () => {
    // An order may list any address among its IOs: a take or clear of its other IOs emits it all the same.
    const [bn256Add, pairing, blake2f] = ['0x0000000000000000000000000000000000000006', '0x0000000000000000000000000000000000000008', '0x0000000000000000000000000000000000000009'];
    const started = performance.now();
    const resolved = await new ChainTokenResolver(rpc).resolve(await mentioned(bn256Add, pairing, blake2f));
    expect(performance.now() - started).toBeLessThan(2_000);
    for (const precompile of [bn256Add, pairing, blake2f]) expect(resolved.get(precompile)).toEqual({ symbol: null, reason: expect.stringMatching(/^symbol\(\) failed: .*PrecompileError/) });
  });

  it.each([
    ['geth, bn256Add', { code: -32000, message: 'bn256: malformed point' }, 'bn256: malformed point'],
    ['geth, the pairing check', { code: -32000, message: 'bad elliptic curve pairing size' }, 'bad elliptic curve pairing size'],
    ['geth, blake2f or the point evaluation', { code: -32000, message: 'invalid input length' }, 'invalid input length'],
    ['nethermind', { code: -32015, message: 'VM execution error.', data: 'PrecompileFailure' }, 'VM execution error. PrecompileFailure'],
    ['geth, RETURNDATACOPY out of bounds', { code: -32000, message: 'return data out of bounds' }, 'return data out of bounds'],
    ['geth, a memory offset past 2^64', { code: -32000, message: 'gas uint64 overflow' }, 'gas uint64 overflow'],
    ['nethermind, RETURNDATACOPY out of bounds', { code: -32015, message: 'VM execution error.', data: 'AccessViolation' }, 'VM execution error. AccessViolation'],
    ['nethermind, a memory offset past 2^64', { code: -32015, message: 'VM execution error.', data: 'GasUInt64Overflow' }, 'VM execution error. GasUInt64Overflow'],
  ] as const)('records a token whose symbol() halts as %s (%o) as unknown, without retrying to the deadline', async (_, error, words) => {
    const proxy = await startRpcProxy(anvil.rpcUrl, 1, { rewrite: (method, result) => (method === 'eth_call' ? new RpcErrorAnswer(error) : result) });
    const halting = await ChainRpc.connect({ urls: [proxy.url], chainId: anvil.chainId, deadlineMs: 10_000, log: testLog() });
    try {
      const started = performance.now();
      const resolved = await new ChainTokenResolver(halting).resolve(await mentioned(await token(returning(bytes32('MKR'))))); // the proxy answers for it
      expect(performance.now() - started).toBeLessThan(5_000); // a retry runs to the 10 s deadline, then stops ingestion
      expect([...resolved.values()]).toEqual([{ symbol: null, reason: `symbol() failed: ${words}` }]);
    } finally {
      halting.close();
      await proxy.close();
    }
  });

  it('through multicall3: tokens that eat all the gas aggregate3 has do not stop the others being read', async () => {
    await installMulticall3(anvil);
    try {
      const loops = [await token(ENDLESS_LOOP), await token(ENDLESS_LOOP), await token(ENDLESS_LOOP)];
      const mkr = await token(returning(bytes32('MKR')));
      const resolved = await new ChainTokenResolver(rpc).resolve(await mentioned(...loops, mkr));
      for (const loop of loops) expect(resolved.get(loop)).toEqual({ symbol: null, reason: expect.stringMatching(/^symbol\(\) /) });
      expect(resolved.get(mkr)).toEqual({ symbol: 'MKR', reason: null });
    } finally {
      await anvil.request('anvil_setCode', ['0xca11bde05977b3631167028862be2a173976ca11', '0x']);
    }
  });

  it('through multicall3: a precompile "token" in a batch that gas eaters make fall back to one call per token does not stop the lookup', async () => {
    await installMulticall3(anvil);
    try {
      const loops = [await token(ENDLESS_LOOP), await token(ENDLESS_LOOP), await token(ENDLESS_LOOP)];
      const bn256Add = '0x0000000000000000000000000000000000000006';
      const mkr = await token(returning(bytes32('MKR')));
      const resolved = await new ChainTokenResolver(rpc).resolve(await mentioned(bn256Add, ...loops, mkr));
      expect(resolved.get(bn256Add)).toEqual({ symbol: null, reason: expect.stringMatching(/^symbol\(\) failed: .*PrecompileError/) });
      expect(resolved.get(mkr)).toEqual({ symbol: 'MKR', reason: null });
    } finally {
      await anvil.request('anvil_setCode', [MULTICALL3, '0x']);
    }
  });

  it('records a symbol that is not UTF-8 as unknown, not as text with replacement characters', async () => {
    const badBytes32 = await token(returning(bytes32('\xffGME')));
    const badString = await token(returning(stringOfBytes('0x74474d45c0')));
    const mkr = await token(returning(bytes32('MKR')));
    const usd0 = await token(returning(bytes32('USD0'))); // ends in a zero nibble: trimmed bytewise
    const tgme = await token(returning(stringOfBytes(`0x${Buffer.from('tGME').toString('hex')}`)));
    const resolved = await new ChainTokenResolver(rpc).resolve(await mentioned(badBytes32, badString, mkr, usd0, tgme));
    expect(resolved.get(badBytes32)).toEqual({ symbol: null, reason: 'symbol() answer is not UTF-8 text: 0xff474d45' });
    expect(resolved.get(badString)).toEqual({ symbol: null, reason: 'symbol() answer is not UTF-8 text: 0x74474d45c0' });
    expect(resolved.get(mkr)).toEqual({ symbol: 'MKR', reason: null });
    expect(resolved.get(usd0)).toEqual({ symbol: 'USD0', reason: null });
    expect(resolved.get(tgme)).toEqual({ symbol: 'tGME', reason: null });
  });

  it('records a symbol longer than 64 bytes as unknown: a token must not make its metadata event huge', async () => {
    const text = (n: number): Hex => `0x${Buffer.from('G'.repeat(n)).toString('hex')}`;
    const huge = await token(returning(stringOfBytes(text(20_000))));
    const longest = await token(returning(stringOfBytes(text(64))));
    const resolved = await new ChainTokenResolver(rpc).resolve(await mentioned(huge, longest));
    expect(resolved.get(huge)).toEqual({ symbol: null, reason: 'symbol() answer is 20000 bytes long, more than the 64 a symbol may take' });
    expect(resolved.get(longest)).toEqual({ symbol: 'G'.repeat(64), reason: null });
  });

  it('records a token reverting with a reason longer than a symbol with that reason cut short: its metadata event must not grow with it either', async () => {
    const long = await token(reverting(errorString('G'.repeat(20_000))));
    const short = await token(reverting(errorString('no symbol')));
    const expectShort = (resolved: ReadonlyMap<string, { symbol: string | null; reason: string | null }>) => {
      expect(resolved.get(short)).toEqual({ symbol: null, reason: 'symbol() reverted: no symbol' });
      const { symbol, reason } = resolved.get(long)!;
      expect(symbol).toBeNull();
      expect(reason?.length).toBeLessThan(300); // 20,000 characters, or a megabyte, made the event too large to store
      expect(reason).toMatch(/^symbol\(\) reverted: G+…$/);
    };
    expectShort(await new ChainTokenResolver(rpc).resolve(await mentioned(long, short)));
    await installMulticall3(anvil);
    try {
      expectShort(await new ChainTokenResolver(rpc).resolve(await mentioned(long, short)));
    } finally {
      await anvil.request('anvil_setCode', ['0xca11bde05977b3631167028862be2a173976ca11', '0x']);
    }
  });

  it('an aggregate3 answer with fewer results than calls is malformed: asked again, never a TypeError, never a token left without its answer', async () => {
    const shortened = (data: unknown) => {
      const results = decodeFunctionResult({ abi: aggregate3, functionName: 'aggregate3', data: data as Hex });
      return encodeFunctionResult({ abi: aggregate3, functionName: 'aggregate3', result: results.slice(0, -1) });
    };
    let faults = 2;
    const proxy = await startRpcProxy(anvil.rpcUrl, 1, { rewrite: (method, result) => (method === 'eth_call' && faults-- > 0 ? shortened(result) : result) });
    await installMulticall3(anvil);
    try {
      // Two answers are faulted, then one passes: the deadline leaves room for both backoffs on a loaded machine.
      const shortRpc = await ChainRpc.connect({ urls: [proxy.url], chainId: anvil.chainId, deadlineMs: 3_000, log: testLog() });
      const mkr = await token(returning(bytes32('MKR')));
      const abc = await token(returning(text('ABC')));
      const resolved = await new ChainTokenResolver(shortRpc).resolve(await mentioned(mkr, abc));
      expect(resolved.get(mkr)).toEqual({ symbol: 'MKR', reason: null });
      expect(resolved.get(abc)).toEqual({ symbol: 'ABC', reason: null });

      faults = Infinity;
      await expect(new ChainTokenResolver(shortRpc).resolve(await mentioned(mkr, abc))).rejects.toThrow(
        /^symbol\(\) of 2 tokens via multicall3 from http:\/\/127\.0\.0\.1:\d+: still failing .*malformed answer: aggregate3 answered 1 results for 2 calls\)?$/,
      );
    } finally {
      await anvil.request('anvil_setCode', ['0xca11bde05977b3631167028862be2a173976ca11', '0x']);
      await proxy.close();
    }
  });
  it('a one-off eth_getCode answer that multicall3 is there, on a chain without it, is forgotten when aggregate3 answers no data: the symbols are read one by one', async () => {
    const { lines, log } = capturedLog('warn');
    let lies = 1;
    const proxy = await startRpcProxy(anvil.rpcUrl, 1, { rewrite: (method, result) => (method === 'eth_getCode' && lies-- > 0 ? '0x6080604052' : result) });
    // A generous deadline: without the fix, the lookup retries aggregate3's undecodable empty answer up to it.
    const proxied = await ChainRpc.connect({ urls: [proxy.url], chainId: anvil.chainId, deadlineMs: 10_000, log: testLog() });
    try {
      const resolver = new ChainTokenResolver(proxied, log);
      const mkr = await token(returning(bytes32('MKR')));
      const abc = await token(returning(text('ABC')));
      const started = performance.now();
      const resolved = await resolver.resolve(await mentioned(mkr, abc));
      expect(performance.now() - started).toBeLessThan(5_000); // at once, not at the deadline
      expect(resolved.get(mkr)).toEqual({ symbol: 'MKR', reason: null });
      expect(resolved.get(abc)).toEqual({ symbol: 'ABC', reason: null });
      expect(lines.map((l) => l.msg)).toEqual([expect.stringMatching(/^multicall3 answered no data, though eth_getCode said it is there/)]);
      expect([proxy.calls.get('eth_getCode'), proxy.calls.get('eth_call')]).toEqual([1, 1 + 2]); // aggregate3 once, then each token
      // The next lookup asks for the code again, and then goes one call per token from the start.
      const xyz = await token(returning(text('XYZ')));
      expect((await resolver.resolve(await mentioned(xyz))).get(xyz)).toEqual({ symbol: 'XYZ', reason: null });
      expect([proxy.calls.get('eth_getCode'), proxy.calls.get('eth_call')]).toEqual([2, 3 + 1]);
    } finally {
      proxied.close();
      await proxy.close();
    }
  });

  describe('behind a node that lags behind the log that mentions the token', () => {
    const proxies: { close(): Promise<void> }[] = [];
    const rpcs: ChainRpc[] = [];
    afterAll(async () => {
      rpcs.forEach((r) => r.close());
      await Promise.all(proxies.map((p) => p.close()));
    });

    /** An RPC through a proxy answering as `rewrite` says, and the proxy (for its call counts). */
    const through = async (rewrite: (method: string, result: unknown, call: JsonRpcCall) => unknown, deadlineMs = 3_000, answered?: (call: JsonRpcCall) => Promise<void>) => {
      const proxy = await startRpcProxy(anvil.rpcUrl, 1, { rewrite, ...(answered && { answered }) });
      proxies.push(proxy);
      const proxied = await ChainRpc.connect({ urls: [proxy.url], chainId: anvil.chainId, deadlineMs, log: testLog() });
      rpcs.push(proxied);
      return { proxy, rpc: proxied };
    };

    /** A real token, its code in a mined block: the block of the log that mentions it. */
    const mined = async (symbol: string): Promise<string> => {
      const address = await token(returning(text(symbol)));
      await anvil.request('anvil_mine', ['0x1']);
      return address;
    };

    it.each([
      ['one eth_call per token', 2 + 2],
      ['multicall3', 1 + 2],
    ] as const)('an empty answer at latest is asked again at the log\'s block: the real token gets its symbol, an EOA stays unknown, at once (%s)', async (path, ethCalls) => {
      if (path === 'multicall3') await installMulticall3(anvil);
      try {
        // "At once": well within a deadline of 10 s, which a retry would run to (and the call count says none happened).
        const { proxy, rpc: lag } = await through(lagging, 10_000);
        const tgme = await mined('tGME');
        const started = performance.now();
        const resolved = await new ChainTokenResolver(lag).resolve(await mentioned(tgme, EOA));
        expect(performance.now() - started).toBeLessThan(5_000);
        expect(resolved.get(tgme)).toEqual({ symbol: 'tGME', reason: null });
        expect(resolved.get(EOA)).toEqual({ symbol: null, reason: NO_DATA });
        expect(proxy.calls.get('eth_call')).toBe(ethCalls); // each asked once at latest (or in one aggregate3), once at the block
      } finally {
        await anvil.request('anvil_setCode', [MULTICALL3, '0x']);
      }
    });

    it('a node without the log\'s block yet ("header not found"), or rate-limiting, is asked again until it answers', async () => {
      const refusals = [new RpcErrorAnswer({ code: -32005, message: 'project ID request rate exceeded' }), HEADER_NOT_FOUND, HEADER_NOT_FOUND];
      const { proxy, rpc: lag } = await through((method, result, call) => (atBlock(method, call) && refusals.length > 0 ? refusals.shift() : lagging(method, result, call)));
      const tgme = await mined('tGME');
      const resolved = await new ChainTokenResolver(lag).resolve(await mentioned(tgme));
      expect(resolved.get(tgme)).toEqual({ symbol: 'tGME', reason: null });
      expect(proxy.calls.get('eth_call')).toBe(1 + 4);
    });

    it.each([
      ['an RPC gateway', -32603, 'upstream does not have the requested block yet'],
      ['nethermind (its words for a block it has not got, as eth_feeHistory answers them)', -32002, 'newestBlock: Block is not available'],
    ] as const)('%s saying it lacks the log\'s block (%s "%s") is a lag too: asked again, never recorded unknown', async (_, code, message) => {
      let refusals = 2;
      const { proxy, rpc: lag } = await through((method, result, call) => (atBlock(method, call) && refusals-- > 0 ? new RpcErrorAnswer({ code, message }) : lagging(method, result, call)));
      const tgme = await mined('tGME');
      const resolved = await new ChainTokenResolver(lag).resolve(await mentioned(tgme));
      expect(resolved.get(tgme)).toEqual({ symbol: 'tGME', reason: null });
      expect(proxy.calls.get('eth_call')).toBe(1 + 3);
    });

    it('anvil\'s own answer for a block above its head (BlockOutOfRangeError, code -32602) is a lag too: asked again until the block is mined', async () => {
      const tgme = await token(returning(text('tGME')));
      const ahead = (await rpc.blockNumber()) + 2n; // the log's block, which this node has not mined yet
      let mining: Promise<unknown> | null = null;
      const { rpc: lag } = await through(lagging, 3_000, async (call) => {
        if (call.method === 'eth_call' && blockOf(call) !== 'latest') mining ??= anvil.request('anvil_mine', ['0x2']);
        await mining;
      });
      const resolved = await new ChainTokenResolver(lag).resolve(new Map([[tgme, ahead]]));
      expect(resolved.get(tgme)).toEqual({ symbol: 'tGME', reason: null });
    });

    it('a node that never gets the log\'s block stops ingestion at the deadline, naming the token and the block: nothing is recorded as unknown', async () => {
      const { rpc: lag } = await through((method, result, call) => (atBlock(method, call) ? HEADER_NOT_FOUND : lagging(method, result, call)), 800);
      const tgme = await mined('tGME');
      const block = await rpc.blockNumber();
      const store = await openStore('sqlite::memory:');
      try {
        const ingester = new Ingester({ store, chainId: anvil.chainId, orderbook: ORDERBOOK, tokens: new ChainTokenResolver(lag), tokensOf: () => [tgme] });
        const log = new History().log(takeOrderV2Log({ owner: OUR_OWNER, validInputs: [io('tGME')], validOutputs: [io('USDC')] }, { input: 1n, output: 1n }), { tx: 'take', block, logIndex: 0 }).data;
        await expect(ingester.ingest([{ ...log, chainId: anvil.chainId }])).rejects.toThrow(
          new RegExp(`^symbol\\(\\) of ${tgme} at block ${block}, where a log mentions it from http://127\\.0\\.0\\.1:\\d+: still failing .*header not found\\)?$`, 's'),
        );
        expect(await store.readLastEvent(streams.tokens(anvil.chainId))).toBeUndefined();
        expect(await store.readLastEvent(ingester.stream)).toBeUndefined();
      } finally {
        await store.close();
      }
    });

    it('a node without the state of the log\'s block (pruned: "missing trie node") cannot confirm an empty answer: unknown with that reason, at once', async () => {
      const pruned = new RpcErrorAnswer({ code: -32000, message: 'missing trie node 2d1f56d2b9b6b0e0b7e1d6c0d0c1f5b5a2a0e0c4e1b5f0d6a4c8e2b1d7f3a9c5 (path )' });
      const { proxy, rpc: lag } = await through((method, result, call) => (atBlock(method, call) ? pruned : result), 10_000);
      await anvil.request('anvil_mine', ['0x1']);
      const started = performance.now();
      const resolved = await new ChainTokenResolver(lag).resolve(await mentioned(EOA));
      expect(performance.now() - started).toBeLessThan(5_000); // no retry: that would run to the 10 s deadline
      const block = await rpc.blockNumber();
      expect(resolved.get(EOA)).toEqual({
        symbol: null,
        reason: `symbol() returned no data at latest, and block ${block}'s state is not available to confirm: missing trie node 2d1f56d2b9b6b0e0b7e1d6c0d0c1f5b5a2a0e0c4e1b5f0d6a4c8e2b1d7f3a9c5 (path )`,
      });
      expect(proxy.calls.get('eth_call')).toBe(2); // not retried
    });
  });
});
