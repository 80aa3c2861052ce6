/**
 * Reorgs on a real anvil node (anvil_reorg, anvil_rollback): orphaned logs get compensating
 * events in chain order, logs that stay on chain are kept as they are, and the fold's
 * positions always equal those of the canonical chain ingested from scratch.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeFunctionData, type Hex } from 'viem';
import { orderbookAbi, takeArgs, type Fill } from '../../src/chain/devnet/index.ts';
import { IngesterService, type IngesterSettings } from '../../src/chain/ingester-service.ts';
import { logEventId } from '../../src/domain/ids.ts';
import { openStore } from '../../src/eventstore/url.ts';
import type { EventStore } from '../../src/eventstore/port.ts';
import { foldLedger } from '../../src/services/ledger-query.ts';
import { OURS, chainLogIds, clearOf, expectedNet, mineEmpty, startDevnet, storedLogs, storedNet, type Devnet, type StoredEntry } from '../support/chain-fixture.ts';
import { startRpcProxy } from '../support/chain-proxy.ts';
import { testLog } from '../support/test-log.ts';
import { until } from '../support/until.ts';

const E17 = 10n ** 17n;
const fill = (side: 'sell' | 'buy', tenths: bigint, equityToken: Fill['equityToken'] = 'tGME'): Fill => ({ owner: OURS, side, equityToken, shares: tenths * E17, usdc: tenths * 2_000_000n });

describe('chain reorgs', () => {
  let devnet: Devnet;
  let otherAccount: Hex;
  const stores: EventStore[] = [];

  beforeAll(async () => {
    devnet = await startDevnet();
    otherAccount = (await devnet.anvil.request<Hex[]>('eth_accounts'))[1]!;
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    await devnet?.stop();
  });

  const follower = async (overrides: Partial<IngesterSettings> = {}) => {
    const store = await openStore(devnet.storeUrl());
    stores.push(store);
    return { store, service: await IngesterService.start(store, devnet.settings(overrides), testLog()) };
  };

  /** Positions of the canonical chain: everything the node has now, ingested from scratch. */
  const canonicalNet = async () => {
    const { store, service } = await follower();
    await service.catchUp();
    return storedNet(store, devnet.fold);
  };

  const rawTx = (hash: Hex) => devnet.anvil.request<Hex>('eth_getRawTransactionByHash', [hash]);
  const idOf = (hash: Hex, logIndex: number) => logEventId(devnet.deployment.chainId, hash, logIndex);
  /** The fold's rejected logs, counted by reason. */
  const storedRejected = async (store: EventStore): Promise<Record<string, number>> => Object.fromEntries((await foldLedger(store, devnet.fold)).rejectedByReason);
  const show = (e: StoredEntry) => `${e.type === 'OrderbookLogRemoved' ? 'removed' : 'recorded'} ${e.logId}`;

  it('a reorg deeper than the depth: orphans compensated in chain order (ClearV2 first), kept logs untouched, new logs appended', async () => {
    const { store, service } = await follower();
    await service.catchUp();
    const before = await storedLogs(store, devnet.stream);
    const t1 = await devnet.trader.take(fill('sell', 15n));
    const t2 = await devnet.trader.clear(clearOf('tAAPL', 20n * E17, 'buy'));
    const t3 = await devnet.trader.take(fill('buy', 7n, 'GME0x'));
    expect(await service.catchUp()).toMatchObject({ appended: 4, removed: 0 });

    // Replace the three blocks: t1 re-mined where it was, t2 and t3 gone, t4 (another sender) new.
    const t4 = fill('sell', 4n, 'GMEs1');
    const t4Request = { from: otherAccount, to: devnet.deployment.orderbook, data: encodeFunctionData({ abi: orderbookAbi, functionName: 'takeOrder', args: takeArgs(devnet.deployment, t4) }) };
    await devnet.anvil.reorg(3, [{ tx: await rawTx(t1.transactionHash), blockOffset: 0 }, { tx: t4Request, blockOffset: 1 }]);
    const t4Log = (await devnet.anvil.request<{ transactionHash: Hex }[]>('eth_getLogs', [{ address: devnet.deployment.orderbook, fromBlock: `0x${(t1.blockNumber + 1n).toString(16)}` }]))[0]!;

    expect(await service.catchUp()).toMatchObject({ reorg: true, removed: 3, appended: 1, alreadyIngested: 1 });
    const after = (await storedLogs(store, devnet.stream)).slice(before.length);
    expect(after.map(show)).toEqual([
      `recorded ${idOf(t1.transactionHash, 0)}`,
      `recorded ${idOf(t2.transactionHash, 0)}`,
      `recorded ${idOf(t2.transactionHash, 1)}`,
      `recorded ${idOf(t3.transactionHash, 0)}`,
      `removed ${idOf(t2.transactionHash, 0)}`,
      `removed ${idOf(t2.transactionHash, 1)}`,
      `removed ${idOf(t3.transactionHash, 0)}`,
      `recorded ${idOf(t4Log.transactionHash, 0)}`,
    ]);
    expect(await storedNet(store, devnet.fold)).toEqual(await canonicalNet());
    expect(await storedNet(store, devnet.fold)).toEqual(expectedNet([fill('sell', 15n), t4]));

    // A restarted ingester rescans from its last log and finds nothing to do.
    const restarted = await IngesterService.start(store, devnet.settings(), testLog());
    expect(await restarted.catchUp()).toMatchObject({ reorg: false, appended: 0, removed: 0 });
  });

  it('a transaction re-mined into another block keeps its log: nothing removed, nothing appended', async () => {
    const { store, service } = await follower();
    const t5 = await devnet.trader.take(fill('sell', 25n));
    await mineEmpty(devnet, 1);
    await service.catchUp();
    const before = await storedLogs(store, devnet.stream);

    await devnet.anvil.reorg(2, [{ tx: await rawTx(t5.transactionHash), blockOffset: 1 }]);
    const [moved] = await devnet.anvil.request<{ blockNumber: Hex }[]>('eth_getLogs', [{ address: devnet.deployment.orderbook, blockHash: (await devnet.anvil.request<{ hash: Hex }>('eth_getBlockByNumber', [`0x${(t5.blockNumber + 1n).toString(16)}`, false])).hash }]);
    expect(BigInt(moved!.blockNumber)).toBe(t5.blockNumber + 1n);

    expect(await service.catchUp()).toMatchObject({ reorg: true, removed: 0, appended: 0 });
    expect(await storedLogs(store, devnet.stream)).toEqual(before);
    expect(await storedNet(store, devnet.fold)).toEqual(await canonicalNet());
    expect(await service.catchUp()).toBeNull();
  });

  it('a reorg within the confirmation depth is invisible: the dropped log is never recorded', async () => {
    const { store, service } = await follower({ confirmations: 2 });
    await mineEmpty(devnet, 2);
    await service.catchUp();
    const t6 = await devnet.trader.take(fill('buy', 9n));
    await service.catchUp();
    await devnet.anvil.reorg(1);
    await mineEmpty(devnet, 3);
    const report = await service.catchUp();
    expect(report).toMatchObject({ reorg: false, removed: 0, appended: 0 });
    expect((await storedLogs(store, devnet.stream)).map((e) => e.logId)).not.toContain(idOf(t6.transactionHash, 0));
    expect(await storedNet(store, devnet.fold)).toEqual(await canonicalNet());
  });

  it('a reorg that drops a foreign order\'s take withdraws its not_ours: the rejected counts equal the canonical chain\'s', async () => {
    const { store, service } = await follower();
    await service.catchUp();
    const theirs = (tenths: bigint): Fill => ({ ...fill('sell', tenths), owner: otherAccount });
    const rejectedBefore = await storedRejected(store);
    await devnet.trader.take(theirs(2n));
    const dropped = await devnet.trader.take(theirs(3n));
    expect(await service.catchUp()).toMatchObject({ appended: 2 });
    expect(await storedRejected(store)).toEqual({ ...rejectedBefore, not_ours: (rejectedBefore.not_ours ?? 0) + 2 });

    await devnet.anvil.reorg(1);
    expect(await service.catchUp()).toMatchObject({ reorg: true, removed: 1 });
    expect((await storedLogs(store, devnet.stream)).slice(-1).map(show)).toEqual([`removed ${idOf(dropped.transactionHash, 0)}`]);
    expect(await storedRejected(store)).toEqual({ ...rejectedBefore, not_ours: (rejectedBefore.not_ours ?? 0) + 1 });
    const { store: canonical, service: fromScratch } = await follower();
    await fromScratch.catchUp();
    expect(await storedRejected(store)).toEqual(await storedRejected(canonical));
  });

  it('the chain shrinks (rollback): a log above the new head is removed once the regrown chain passes its block without it', async () => {
    const { store, service } = await follower();
    await service.catchUp();
    const t7 = await devnet.trader.take(fill('sell', 3n));
    expect(await service.catchUp()).toMatchObject({ appended: 1 });

    await devnet.anvil.rollback(1);
    expect(await service.catchUp()).toMatchObject({ reorg: true, removed: 0 });
    await mineEmpty(devnet, 2);
    expect(await service.catchUp()).toMatchObject({ reorg: true, removed: 1 });
    const entries = await storedLogs(store, devnet.stream);
    expect(entries.slice(-2).map(show)).toEqual([`recorded ${idOf(t7.transactionHash, 0)}`, `removed ${idOf(t7.transactionHash, 0)}`]);
    expect(await storedNet(store, devnet.fold)).toEqual(await canonicalNet());
  });

  it('a log re-mined into a higher block, then dropped by a reorg that starts above the block it was recorded in, is removed', async () => {
    const { store, service } = await follower();
    await service.catchUp();
    const t = await devnet.trader.take(fill('sell', 12n));
    await mineEmpty(devnet, 2);
    await service.catchUp();

    // Reorg 1 replaces t's block and the two above: another account's fill w in the middle one, t re-mined in the last.
    const w = fill('buy', 3n, 'GME0x');
    const wRequest = { from: otherAccount, to: devnet.deployment.orderbook, data: encodeFunctionData({ abi: orderbookAbi, functionName: 'takeOrder', args: takeArgs(devnet.deployment, w) }) };
    await devnet.anvil.reorg(3, [{ tx: wRequest, blockOffset: 1 }, { tx: await rawTx(t.transactionHash), blockOffset: 2 }]);
    expect(await service.catchUp()).toMatchObject({ reorg: true, removed: 0, appended: 1, alreadyIngested: 1 });
    expect(await storedNet(store, devnet.fold)).toEqual(await canonicalNet());

    // Reorg 2 replaces only t's new block, without it: t is gone from the chain, so from the ledger.
    await devnet.anvil.reorg(1);
    expect((await chainLogIds(devnet))).not.toContain(idOf(t.transactionHash, 0));
    expect(await service.catchUp()).toMatchObject({ reorg: true, removed: 1 });
    expect((await storedLogs(store, devnet.stream)).slice(-1).map(show)).toEqual([`removed ${idOf(t.transactionHash, 0)}`]);
    expect(await storedNet(store, devnet.fold)).toEqual(await canonicalNet());
  });

  it('… also when the ingester restarts between the two reorgs', async () => {
    const { store, service } = await follower();
    await service.catchUp();
    const t = await devnet.trader.take(fill('buy', 8n, 'tAAPL'));
    await mineEmpty(devnet, 2);
    await service.catchUp();
    const w = fill('sell', 2n, 'AAPL0x');
    const wRequest = { from: otherAccount, to: devnet.deployment.orderbook, data: encodeFunctionData({ abi: orderbookAbi, functionName: 'takeOrder', args: takeArgs(devnet.deployment, w) }) };
    await devnet.anvil.reorg(3, [{ tx: wRequest, blockOffset: 1 }, { tx: await rawTx(t.transactionHash), blockOffset: 2 }]);
    expect(await service.catchUp()).toMatchObject({ reorg: true, removed: 0, appended: 1, alreadyIngested: 1 });

    // A new process knows t only from the stream, which has it in the block it was recorded in.
    const restarted = await IngesterService.start(store, devnet.settings(), testLog());
    await devnet.anvil.reorg(1);
    expect(await restarted.catchUp()).toMatchObject({ reorg: true, removed: 1 });
    expect((await storedLogs(store, devnet.stream)).slice(-1).map(show)).toEqual([`removed ${idOf(t.transactionHash, 0)}`]);
    expect(await storedNet(store, devnet.fold)).toEqual(await canonicalNet());
  });

  it('a fill a reorg dropped is recorded again when its transaction is mined again, removed again by a second reorg, and recorded a third time; restarts rebuild the index', async () => {
    const { store, service } = await follower();
    await service.catchUp();
    const before = (await storedLogs(store, devnet.stream)).length;
    const t = await devnet.trader.take(fill('sell', 6n));
    const c = await devnet.trader.clear(clearOf('tAAPL', 13n * E17, 'buy'));
    const raws = [await rawTx(t.transactionHash), await rawTx(c.transactionHash)];
    const ids = [idOf(t.transactionHash, 0), idOf(c.transactionHash, 0), idOf(c.transactionHash, 1)];
    expect(await service.catchUp()).toMatchObject({ appended: 3 });
    const net = await storedNet(store, devnet.fold);

    /** Both transactions back in the mempool and mined again, each into a new block above the reorg. */
    const mineAgain = async () => {
      for (const raw of raws) await devnet.anvil.request('eth_sendRawTransaction', [raw]);
      // anvil may answer the send before its automine has mined the block (seen under load in CI).
      await until(async () => {
        const chain = await chainLogIds(devnet);
        return ids.every((id) => chain.includes(id));
      }, 'the transactions sent again to be mined');
    };
    const generations = async () => (await storedLogs(store, devnet.stream)).slice(before).map((e) => `${e.type === 'OrderbookLogRemoved' ? 'removed' : 'recorded'} ${ids.indexOf(idOf(e.transactionHash as Hex, Number(e.logIndex)))}`);

    // Reorg 1 drops both blocks: the fills are taken back.
    await devnet.anvil.reorg(2);
    expect(await service.catchUp()).toMatchObject({ reorg: true, removed: 3 });
    expect(await storedNet(store, devnet.fold)).toEqual(await canonicalNet());

    // Mined again: the same logs (transaction, index, content) in other blocks, recorded again; the clear pairs again.
    await mineAgain();
    expect(await service.catchUp()).toMatchObject({ appended: 3, removed: 0 });
    expect(await storedNet(store, devnet.fold)).toEqual(net);
    expect(await storedNet(store, devnet.fold)).toEqual(await canonicalNet());

    // A restarted ingester knows the logs recorded again from the stream: reorg 2 drops them, and it removes them.
    const restarted = await IngesterService.start(store, devnet.settings(), testLog());
    await devnet.anvil.reorg(2);
    expect(await restarted.catchUp()).toMatchObject({ reorg: true, removed: 3 });
    expect(await storedNet(store, devnet.fold)).toEqual(await canonicalNet());

    // Another restart, then mined a third time: recorded again, under ids no earlier generation had.
    const third = await IngesterService.start(store, devnet.settings(), testLog());
    await mineAgain();
    expect(await third.catchUp()).toMatchObject({ appended: 3, removed: 0 });
    expect(await storedNet(store, devnet.fold)).toEqual(net);
    expect(await storedNet(store, devnet.fold)).toEqual(await canonicalNet());
    // The first ingester, behind the stream, finds them stored: nothing twice.
    await service.catchUp();
    expect(await generations()).toEqual([
      ...['recorded 0', 'recorded 1', 'recorded 2'],
      ...['removed 0', 'removed 1', 'removed 2'],
      ...['recorded 0', 'recorded 1', 'recorded 2'],
      ...['removed 0', 'removed 1', 'removed 2'],
      ...['recorded 0', 'recorded 1', 'recorded 2'],
    ]);
    const eventIds: string[] = [];
    for await (const e of store.readStream(devnet.stream)) eventIds.push(e.id);
    expect(new Set(eventIds).size).toBe(eventIds.length);
    expect(await storedNet(store, devnet.fold)).toEqual(await canonicalNet());
  });

  /** Our clear behind another account's take in one block: the clear's logs sit one index higher than in a block of their own. */
  const behindAnotherLog = (rawClear: Hex) => {
    const request = { from: otherAccount, to: devnet.deployment.orderbook, data: encodeFunctionData({ abi: orderbookAbi, functionName: 'takeOrder', args: takeArgs(devnet.deployment, fill('buy', 2n, 'GME0x')) }) };
    return [{ tx: request, blockOffset: 0 }, { tx: rawClear, blockOffset: 0 }] as const;
  };
  /** The orderbook logs of `hash`'s transaction on the chain now, by log index. */
  const logIndexesOf = async (hash: Hex) => {
    const receipt = await devnet.anvil.request<{ logs: { logIndex: Hex }[] }>('eth_getTransactionReceipt', [hash]);
    return receipt.logs.map((l) => Number(l.logIndex));
  };

  it('a reorg re-mines a clear behind another log, so its logs move up one index (its ClearV2 now where its AfterClear was): the old logs are removed, the new ones recorded', async () => {
    const { store, service } = await follower();
    await service.catchUp();
    const c = await devnet.trader.clear(clearOf('tAAPL', 13n * E17, 'buy'));
    expect(await service.catchUp()).toMatchObject({ appended: 2 });
    expect(await logIndexesOf(c.transactionHash)).toEqual([0, 1]);

    await devnet.anvil.reorg(1, behindAnotherLog(await rawTx(c.transactionHash)));
    expect(await logIndexesOf(c.transactionHash)).toEqual([1, 2]);

    expect(await service.catchUp()).toMatchObject({ reorg: true, removed: 2, appended: 3 });
    const entries = await storedLogs(store, devnet.stream);
    expect(entries.slice(-5).map((e) => `${e.type === 'OrderbookLogRemoved' ? 'removed' : 'recorded'} ${e.transactionHash === c.transactionHash ? 'c' : 'w'}:${e.logIndex}`)).toEqual([
      'removed c:0',
      'removed c:1',
      'recorded w:0',
      'recorded c:1',
      'recorded c:2',
    ]);
    const eventIds: string[] = [];
    for await (const e of store.readStream(devnet.stream)) eventIds.push(e.id);
    expect(new Set(eventIds).size).toBe(eventIds.length);
    expect(await storedNet(store, devnet.fold)).toEqual(await canonicalNet());
    // A restarted ingester finds the ledger in step with the chain.
    const restarted = await IngesterService.start(store, devnet.settings(), testLog());
    expect(await restarted.catchUp()).toBeNull();
  });

  it('a clear a reorg dropped, mined again behind another log: recorded again at its new indexes, one of them a place the ledger holds removed with other content', async () => {
    const { store, service } = await follower();
    await service.catchUp();
    const c = await devnet.trader.clear(clearOf('tSPLG', 7n * E17, 'sell'));
    expect(await service.catchUp()).toMatchObject({ appended: 2 });
    const net = await storedNet(store, devnet.fold);
    const [take, clear] = behindAnotherLog(await rawTx(c.transactionHash));
    await devnet.anvil.reorg(1);
    expect(await service.catchUp()).toMatchObject({ reorg: true, removed: 2 });

    await devnet.anvil.request('evm_setAutomine', [false]);
    try {
      // A higher tip than the clear's puts the take first in the block.
      await devnet.anvil.request('eth_sendTransaction', [{ ...take.tx, maxPriorityFeePerGas: '0x174876e800', maxFeePerGas: '0x2e90edd000' }]);
      await devnet.anvil.request('eth_sendRawTransaction', [clear.tx]);
      await mineEmpty(devnet, 1);
    } finally {
      await devnet.anvil.request('evm_setAutomine', [true]);
    }
    expect(await logIndexesOf(c.transactionHash)).toEqual([1, 2]);

    // A restarted ingester (its index rebuilt from the stream) records them.
    const restarted = await IngesterService.start(store, devnet.settings(), testLog());
    expect(await restarted.catchUp()).toMatchObject({ appended: 3, removed: 0 });
    expect(await storedNet(store, devnet.fold)).toEqual(await canonicalNet());
    expect(Object.keys(await storedNet(store, devnet.fold))).toEqual(expect.arrayContaining(Object.keys(net)));
    expect(await service.catchUp()).toMatchObject({ appended: 0, removed: 0 });
  });

  it.each([
    ['by range', 0],
    ['by block hash', undefined],
  ] as const)('a reorg between two eth_getLogs answers (%s) of one step: nothing from the abandoned fork is kept', async (_, lagHorizon) => {
    const proxy = await startRpcProxy(devnet.anvil.rpcUrl, 1);
    try {
      // One block per call, one call at a time: the step reads the new blocks in several answers.
      const { store, service } = await follower({ rpcUrls: [proxy.url], concurrency: 1, maxBlockRange: 1, ...(lagHorizon !== undefined && { lagHorizon }) });
      await service.catchUp();
      const t1 = await devnet.trader.take(fill('sell', 15n));
      await mineEmpty(devnet, 2);
      const t4 = { from: otherAccount, to: devnet.deployment.orderbook, data: encodeFunctionData({ abi: orderbookAbi, functionName: 'takeOrder', args: takeArgs(devnet.deployment, fill('buy', 4n)) }) };
      let reorged = false;
      // Once the node has answered for t1's block, and before the answer arrives, the chain replaces that block and the two above it.
      proxy.faults.answered = async (call) => {
        const filter = call.params?.[0];
        if (reorged || call.method !== 'eth_getLogs' || (BigInt(filter?.fromBlock ?? -1) !== t1.blockNumber && filter?.blockHash !== t1.blockHash)) return;
        reorged = true;
        await devnet.anvil.reorg(3, [{ tx: t4, blockOffset: 1 }]);
      };

      expect(await service.catchUp()).toMatchObject({ reorg: true, appended: 1, removed: 0 });
      expect(reorged).toBe(true);
      expect((await storedLogs(store, devnet.stream)).map((e) => e.logId)).not.toContain(idOf(t1.transactionHash, 0));
      expect(await storedNet(store, devnet.fold)).toEqual(await canonicalNet());
      expect(await service.catchUp()).toBeNull();
    } finally {
      await proxy.close();
    }
  });
});
