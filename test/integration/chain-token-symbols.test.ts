/**
 * ChainTokenResolver against a real anvil node, with tokens whose symbol() misbehaves: code
 * put at an address with anvil_setCode (no deployment needed). A token's bad answer is the
 * token's, recorded as unknown with a reason; it must never stop ingestion.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeFunctionResult, encodeAbiParameters, encodeFunctionResult, parseAbi, type Hex } from 'viem';
import { startAnvil, type Anvil } from '../../src/chain/devnet/index.ts';
import { ChainRpc } from '../../src/chain/rpc.ts';
import { ChainTokenResolver } from '../../src/chain/token-symbols.ts';
import { installMulticall3 } from '../support/chain-multicall.ts';
import { startRpcProxy } from '../support/chain-proxy.ts';
import { testLog } from '../support/test-log.ts';

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
/** An ABI `string` answer holding these bytes as they are (valid UTF-8 or not): ABI-encoded like `bytes`. */
const stringOfBytes = (bytes: Hex): Hex => encodeAbiParameters([{ type: 'bytes' }], [bytes]);
const bytes32 = (text: string): Hex => `0x${Buffer.from(text, 'latin1').toString('hex').padEnd(64, '0')}`;

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
    const resolved = await new ChainTokenResolver(rpc).resolve([invalid, looping, mkr]);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(resolved.get(invalid)).toEqual({ symbol: null, reason: expect.stringMatching(/^symbol\(\) failed: .*InvalidFEOpcode/) });
    expect(resolved.get(looping)).toEqual({ symbol: null, reason: expect.stringMatching(/^symbol\(\) failed: .*OutOfGas/) });
    expect(resolved.get(mkr)).toEqual({ symbol: 'MKR', reason: null });
  });

  it('through multicall3: tokens that eat all the gas aggregate3 has do not stop the others being read', async () => {
    await installMulticall3(anvil);
    try {
      const loops = [await token(ENDLESS_LOOP), await token(ENDLESS_LOOP), await token(ENDLESS_LOOP)];
      const mkr = await token(returning(bytes32('MKR')));
      const resolved = await new ChainTokenResolver(rpc).resolve([...loops, mkr]);
      for (const loop of loops) expect(resolved.get(loop)).toEqual({ symbol: null, reason: expect.stringMatching(/^symbol\(\) /) });
      expect(resolved.get(mkr)).toEqual({ symbol: 'MKR', reason: null });
    } finally {
      await anvil.request('anvil_setCode', ['0xca11bde05977b3631167028862be2a173976ca11', '0x']);
    }
  });

  it('records a symbol that is not UTF-8 as unknown, not as text with replacement characters', async () => {
    const badBytes32 = await token(returning(bytes32('\xffGME')));
    const badString = await token(returning(stringOfBytes('0x74474d45c0')));
    const mkr = await token(returning(bytes32('MKR')));
    const usd0 = await token(returning(bytes32('USD0'))); // ends in a zero nibble: trimmed bytewise
    const tgme = await token(returning(stringOfBytes(`0x${Buffer.from('tGME').toString('hex')}`)));
    const resolved = await new ChainTokenResolver(rpc).resolve([badBytes32, badString, mkr, usd0, tgme]);
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
    const resolved = await new ChainTokenResolver(rpc).resolve([huge, longest]);
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
    expectShort(await new ChainTokenResolver(rpc).resolve([long, short]));
    await installMulticall3(anvil);
    try {
      expectShort(await new ChainTokenResolver(rpc).resolve([long, short]));
    } finally {
      await anvil.request('anvil_setCode', ['0xca11bde05977b3631167028862be2a173976ca11', '0x']);
    }
  });

  it('an aggregate3 answer with fewer results than calls is malformed: asked again, never a TypeError, never a token left without its answer', async () => {
    const aggregate3 = parseAbi(['struct Result { bool success; bytes returnData; }', 'function aggregate3((address, bool, bytes)[] calls) returns (Result[])']);
    const shortened = (data: unknown) => {
      const results = decodeFunctionResult({ abi: aggregate3, functionName: 'aggregate3', data: data as Hex });
      return encodeFunctionResult({ abi: aggregate3, functionName: 'aggregate3', result: results.slice(0, -1) });
    };
    let faults = 2;
    const proxy = await startRpcProxy(anvil.rpcUrl, 1, { rewrite: (method, result) => (method === 'eth_call' && faults-- > 0 ? shortened(result) : result) });
    await installMulticall3(anvil);
    try {
      const shortRpc = await ChainRpc.connect({ urls: [proxy.url], chainId: anvil.chainId, deadlineMs: 800, log: testLog() });
      const mkr = await token(returning(bytes32('MKR')));
      const abc = await token(returning(stringOfBytes(`0x${Buffer.from('ABC').toString('hex')}`)));
      const resolved = await new ChainTokenResolver(shortRpc).resolve([mkr, abc]);
      expect(resolved.get(mkr)).toEqual({ symbol: 'MKR', reason: null });
      expect(resolved.get(abc)).toEqual({ symbol: 'ABC', reason: null });

      faults = Infinity;
      await expect(new ChainTokenResolver(shortRpc).resolve([mkr, abc])).rejects.toThrow(
        /^symbol\(\) of 2 tokens via multicall3 from http:\/\/127\.0\.0\.1:\d+: still failing .*: malformed answer: aggregate3 answered 1 results for 2 calls$/,
      );
    } finally {
      await anvil.request('anvil_setCode', ['0xca11bde05977b3631167028862be2a173976ca11', '0x']);
      await proxy.close();
    }
  });
});
