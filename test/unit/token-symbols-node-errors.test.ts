/**
 * ChainTokenResolver against a node that words a token's failure its own way: older Nethermind
 * answers `{"code":-32015,"message":"VM execution error.","data":"BadInstruction"}`, the failure
 * named in `data`, not in the message. It is still the token's answer, never a transport failure
 * to retry until ingestion stops at its deadline.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { encodeErrorResult, parseAbi } from 'viem';
import { ChainRpc } from '../../src/chain/rpc.ts';
import { ChainTokenResolver } from '../../src/chain/token-symbols.ts';
import { testLog } from '../support/test-log.ts';

const REVERT_DATA = encodeErrorResult({ abi: parseAbi(['error Error(string)']), errorName: 'Error', args: ['no symbol here'] });

describe('ChainTokenResolver, failures a node names in error.data', () => {
  const servers: Server[] = [];
  afterAll(() => servers.forEach((s) => (s.closeAllConnections(), s.close())));

  /** A node on chain 8453 without multicall3 that answers every eth_call with `error`. */
  const node = async (error: object): Promise<string> => {
    const server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const call = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: number; method: string };
      const answer = call.method === 'eth_chainId' ? { result: '0x2105' } : call.method === 'eth_getCode' ? { result: '0x' } : { error };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: call.id, ...answer }));
    });
    servers.push(server);
    await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };

  const resolve = async (url: string) => {
    const rpc = await ChainRpc.connect({ urls: [url], chainId: 8453, deadlineMs: 1_500, log: testLog() });
    try {
      return (await new ChainTokenResolver(rpc).resolve(new Map([['0x00000000000000000000000000000000000000aa', 1n]]))).get('0x00000000000000000000000000000000000000aa');
    } finally {
      rpc.close();
    }
  };

  it('an invalid opcode named only in data ("BadInstruction") is the token failing, recorded as unknown', async () => {
    const url = await node({ code: -32015, message: 'VM execution error.', data: 'BadInstruction' });
    expect(await resolve(url)).toEqual({ symbol: null, reason: expect.stringMatching(/^symbol\(\) failed: .*BadInstruction/) });
  });

  it('a revert named only in data ("Reverted 0x…") is the token refusing, with its reason', async () => {
    const url = await node({ code: -32015, message: 'VM execution error.', data: `Reverted ${REVERT_DATA}` });
    expect(await resolve(url)).toEqual({ symbol: null, reason: 'symbol() reverted: no symbol here' });
  });
});
