/**
 * The devnet toolkit against a real anvil: the test orderbook's logs must be
 * indistinguishable from IOrderBookV4's, decoded with the spec ABI itself.
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeEventLog,
  toEventSelector,
  toFunctionSelector,
  type Abi,
  type AbiEvent,
  type AbiFunction,
  type Address,
  type Hex,
  type Log,
} from 'viem';
import {
  clearArgs,
  compileContracts,
  createTrader,
  deployDevnet,
  devnetClients,
  orderbookAbi,
  startAnvil,
  takeArgs,
  type Anvil,
  type DevnetClients,
  type DevnetDeployment,
  type Fill,
  type Trader,
} from '../../src/chain/devnet/index.ts';
import { startRpcProxy } from '../support/chain-proxy.ts';

const SPEC_ABI = JSON.parse(readFileSync(new URL('../fixtures/IOrderBookV4.events.json', import.meta.url), 'utf8')) as Abi;
// The topic0 table of spec/orderbook-v4.md.
const SPEC_TOPIC0: Record<string, Hex> = {
  ClearV2: '0x692ee69af2843c70772be93470669f3c73e583316a047b6bfefdae5629de37ce',
  AfterClear: '0x3f20e55919cca701abb2a40ab72542b25ea7eed63a50f979dd2cd3231e5f488d',
  TakeOrderV2: '0xdb6a7f7c95db17afba67ed8b030afd2d087b130ec173b9f15ccde01097dd9353',
};

const OURS: Address = '0x1111111111111111111111111111111111111111';
const THEIRS: Address = '0x2222222222222222222222222222222222222222';
const E18 = 10n ** 18n;

const events = (abi: Abi) => abi.filter((item): item is AbiEvent => item.type === 'event');
const functions = (abi: Abi) => abi.filter((item): item is AbiFunction => item.type === 'function');
const selectors = (abi: Abi) => [...events(abi).map(toEventSelector), ...functions(abi).map(toFunctionSelector)].sort();

const decode = (log: Log) => decodeEventLog({ abi: SPEC_ABI, data: log.data, topics: log.topics as [Hex, ...Hex[]] });

describe('devnet', () => {
  let anvil: Anvil;
  let deployment: DevnetDeployment;
  let trader: Trader;
  let clients: DevnetClients;
  let sender: Address;

  const io = (token: 'USDC' | 'tSPLG' | 'AAPL0x' | 'GME0x', decimals: number) => ({
    token: deployment.tokens[token].address,
    decimals,
    vaultId: 1n,
  });
  const logsOf = async (blockHash: Hex) =>
    clients.publicClient.getLogs({ address: deployment.orderbook, blockHash });

  beforeAll(async () => {
    anvil = await startAnvil();
    deployment = await deployDevnet(anvil.rpcUrl);
    trader = createTrader(anvil.rpcUrl, deployment);
    clients = devnetClients(anvil.rpcUrl, deployment.chainId);
    sender = clients.walletClient.account.address;
  });

  afterAll(async () => {
    await anvil?.stop();
  });

  it('declares the events with the spec topic0s and the typed ABI matches the compiled one', async () => {
    const compiled = (await compileContracts()).TestOrderBook.abi;
    for (const event of events(SPEC_ABI)) expect(toEventSelector(event)).toBe(SPEC_TOPIC0[event.name]);
    expect(events(compiled).map(toEventSelector).sort()).toEqual(Object.values(SPEC_TOPIC0).sort());
    expect(selectors(orderbookAbi)).toEqual(selectors(compiled));
  });

  it('deploys tokens whose symbol() is their name, and a BrokenToken whose symbol() reverts', async () => {
    const symbolAbi = [{ type: 'function', name: 'symbol', stateMutability: 'view', inputs: [], outputs: [{ type: 'string' }] }] as const;
    const symbol = (address: Address) => clients.publicClient.readContract({ address, abi: symbolAbi, functionName: 'symbol' });
    expect(await symbol(deployment.tokens.tGME.address)).toBe('tGME');
    expect(await symbol(deployment.tokens.USDC.address)).toBe('USDC');
    await expect(symbol(deployment.tokens.BrokenToken.address)).rejects.toThrow(/revert/i);
    expect(deployment.chainId).toBe(anvil.chainId);
  });

  it('take: TakeOrderV2 carries the taker’s amounts (spec example: our order sells 2 tSPLG)', async () => {
    const receipt = await trader.take({ owner: OURS, side: 'sell', equityToken: 'tSPLG', shares: 2n * E18, usdc: 160_155_077n });
    const [log, ...rest] = await logsOf(receipt.blockHash);
    expect(rest).toHaveLength(0);
    expect(log!.topics).toEqual([SPEC_TOPIC0.TakeOrderV2]);
    expect(decode(log!)).toEqual({
      eventName: 'TakeOrderV2',
      args: {
        sender,
        config: {
          order: {
            owner: OURS,
            evaluable: { interpreter: '0x0000000000000000000000000000000000000001', store: '0x0000000000000000000000000000000000000002', bytecode: '0xdeadbeef' },
            validInputs: [io('USDC', 6), io('tSPLG', 18)],
            validOutputs: [io('USDC', 6), io('tSPLG', 18)],
            nonce: expect.stringMatching(/^0x[0-9a-f]{64}$/),
          },
          inputIOIndex: 0n, // our order received USDC…
          outputIOIndex: 1n, // …and gave tSPLG
          signedContext: [],
        },
        input: 2n * E18, // the taker's input: what our order gave
        output: 160_155_077n, // the taker's output: what our order received
      },
    });
  });

  it('a receipt not yet readable when the trader first looks is found once it is, though no block follows (automine)', async () => {
    // The node mined the block (automine) but answers no receipt for a while, as anvil does under load: the next
    // block waits for the trader's next transaction, so a wait that looks again only at a new block waits for ever.
    let since: number | undefined;
    const proxy = await startRpcProxy(anvil.rpcUrl, 1, {
      rewrite: (method, result) => {
        if (method !== 'eth_getTransactionReceipt') return result;
        since ??= Date.now();
        return Date.now() - since < 1_000 ? null : result;
      },
    });
    try {
      const taking = createTrader(proxy.url, deployment).take({ owner: OURS, side: 'sell', equityToken: 'tSPLG', shares: E18, usdc: 80_000_000n });
      const receipt = await Promise.race([taking, sleep(5_000).then(() => undefined)]);
      expect(receipt?.status).toBe('success');
      expect(proxy.calls.get('eth_getTransactionReceipt')).toBeGreaterThan(1);
    } finally {
      await proxy.close();
    }
  });

  it('take: a buy swaps the IO indices and the amounts', async () => {
    const receipt = await trader.take({ owner: OURS, side: 'buy', equityToken: 'tSPLG', shares: 3n * E18, usdc: 240_000_000n });
    const [log] = await logsOf(receipt.blockHash);
    expect(decode(log!).args).toMatchObject({ config: { inputIOIndex: 1n, outputIOIndex: 0n }, input: 240_000_000n, output: 3n * E18 });
  });

  it('clear: ClearV2 then its AfterClear (spec example: bob, ours, buys 9 AAPL0x for 100 USDC)', async () => {
    const receipt = await trader.clear({
      alice: { owner: THEIRS, side: 'sell', equityToken: 'AAPL0x', shares: 9n * E18, usdc: 99_000_000n },
      bob: { owner: OURS, side: 'buy', equityToken: 'AAPL0x', shares: 9n * E18, usdc: 100_000_000n },
    });
    const logs = await logsOf(receipt.blockHash);
    expect(logs.map((l) => l.topics[0])).toEqual([SPEC_TOPIC0.ClearV2, SPEC_TOPIC0.AfterClear]);
    expect(logs.map((l) => l.logIndex)).toEqual([0, 1]);
    const [clear, after] = logs.map(decode);
    expect(clear).toMatchObject({
      eventName: 'ClearV2',
      args: {
        sender,
        alice: { owner: THEIRS, validInputs: [io('USDC', 6), io('AAPL0x', 18)], validOutputs: [io('USDC', 6), io('AAPL0x', 18)] },
        bob: { owner: OURS, validInputs: [io('USDC', 6), io('AAPL0x', 18)], validOutputs: [io('USDC', 6), io('AAPL0x', 18)] },
        clearConfig: {
          aliceInputIOIndex: 0n,
          aliceOutputIOIndex: 1n,
          bobInputIOIndex: 1n,
          bobOutputIOIndex: 0n,
          aliceBountyVaultId: 1n,
          bobBountyVaultId: 1n,
        },
      },
    });
    expect(after).toEqual({
      eventName: 'AfterClear',
      args: {
        sender,
        clearStateChange: { aliceOutput: 9n * E18, bobOutput: 100_000_000n, aliceInput: 99_000_000n, bobInput: 9n * E18 },
      },
    });
  });

  it('clearMany: several ClearV2/AfterClear pairs in one transaction', async () => {
    const pair = (shares: bigint) => ({
      alice: { owner: OURS, side: 'sell', equityToken: 'GME0x', shares, usdc: 25_000_000n },
      bob: { owner: THEIRS, side: 'buy', equityToken: 'GME0x', shares, usdc: 25_000_000n },
    }) as const;
    const receipt = await trader.clearMany([pair(1n * E18), pair(2n * E18), pair(3n * E18)]);
    const logs = await logsOf(receipt.blockHash);
    expect(new Set(logs.map((l) => l.transactionHash))).toEqual(new Set([receipt.transactionHash]));
    expect(logs.map((l) => decode(l).eventName)).toEqual(['ClearV2', 'AfterClear', 'ClearV2', 'AfterClear', 'ClearV2', 'AfterClear']);
    const changes = logs.map(decode).filter((e) => e.eventName === 'AfterClear').map((e) => e.args);
    expect(changes).toMatchObject([1n, 2n, 3n].map((n) => ({ clearStateChange: { aliceOutput: n * E18 } })));
  });

  it('takeMany: hundreds of TakeOrderV2 logs in one transaction, in order', async () => {
    const fills: Fill[] = Array.from({ length: 300 }, (_, i) => ({
      owner: i % 2 === 0 ? OURS : THEIRS,
      side: i % 3 === 0 ? 'buy' : 'sell',
      equityToken: 'tGME',
      shares: BigInt(i + 1) * 10n ** 17n,
      usdc: BigInt(i + 1) * 1_000_000n,
    }));
    const receipt = await trader.takeMany(fills);
    const logs = await logsOf(receipt.blockHash);
    expect(logs).toHaveLength(300);
    expect(logs.map((l) => l.logIndex)).toEqual(fills.map((_, i) => i));
    expect(logs.map((l) => decode(l).args)).toEqual(fills.map((f) => {
      const [config, input, output] = takeArgs(deployment, f);
      return { sender, config, input, output };
    }));
  });

  it('emitClearV2: a lone ClearV2, for the missing-AfterClear case', async () => {
    const [alice, bob, clearConfig] = clearArgs(deployment, {
      alice: { owner: OURS, side: 'sell', equityToken: 'tAAPL', shares: E18, usdc: 1n },
      bob: { owner: THEIRS, side: 'buy', equityToken: 'tAAPL', shares: E18, usdc: 1n },
    });
    const hash = await clients.walletClient.writeContract({
      address: deployment.orderbook,
      abi: orderbookAbi,
      functionName: 'emitClearV2',
      args: [alice, bob, clearConfig],
    });
    const receipt = await clients.publicClient.waitForTransactionReceipt({ hash });
    expect((await logsOf(receipt.blockHash)).map((l) => decode(l).eventName)).toEqual(['ClearV2']);
  });

  it('reorg: anvil_reorg drops a log, and can re-mine its transaction in another block', async () => {
    const receipt = await trader.take({ owner: OURS, side: 'sell', equityToken: 'tGME', shares: E18, usdc: 20_000_000n });
    const raw = await anvil.request<Hex>('eth_getRawTransactionByHash', [receipt.transactionHash]);
    const atBlock = { address: deployment.orderbook, fromBlock: receipt.blockNumber, toBlock: receipt.blockNumber };

    await anvil.reorg(1);
    expect(await clients.publicClient.getBlockNumber()).toBe(receipt.blockNumber);
    expect(await clients.publicClient.getLogs(atBlock)).toHaveLength(0);

    await anvil.request('evm_mine'); // a second block, so the tx can land lower than before
    await anvil.reorg(2, [{ tx: raw, blockOffset: 0 }]);
    const [moved] = await clients.publicClient.getLogs(atBlock);
    expect(moved!.transactionHash).toBe(receipt.transactionHash);
    expect(moved!.blockHash).not.toBe(receipt.blockHash);

    await anvil.rollback(1);
    expect(await clients.publicClient.getBlockNumber()).toBe(receipt.blockNumber);
  });

  it('stop() kills the node: its port refuses connections', async () => {
    await anvil.stop();
    const refused = await new Promise<string | undefined>((resolve) => {
      const socket = connect(anvil.port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(undefined);
      });
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code));
    });
    expect(refused).toBe('ECONNREFUSED');
  });
});
