/**
 * A block whose orderbook logs add up to more than viem's 10 MiB answer limit: anyone can take
 * their own order with a signed context of megabytes, which TakeOrderV2 emits whole. One block
 * cannot be split, so its eth_getLogs answer must still be read; else ingestion stops there for good.
 * The logs come from code put at an address with anvil_setCode, which stands in for the orderbook.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hex } from 'viem';
import { startAnvil, type Anvil } from '../../src/chain/devnet/index.ts';
import { IngesterService } from '../../src/chain/ingester-service.ts';
import { TAKE_ORDER_V2_TOPIC } from '../../src/domain/orderbook-abi.ts';
import { withStore } from '../../src/eventstore/url.ts';
import { testLog } from '../support/test-log.ts';

/** Bytes of (zero) data per log; five such logs make an answer of ~11 MB of hex. */
const LOG_BYTES = 1_100_000;
const LOGS = 5;
/** Runtime code emitting one TakeOrderV2-topic log of LOG_BYTES zero bytes: PUSH32 topic, PUSH3 size, PUSH1 0, LOG1, STOP. */
const EMITTER: Hex = `0x7f${TAKE_ORDER_V2_TOPIC.slice(2)}62${LOG_BYTES.toString(16).padStart(6, '0')}6000a100`;
const ORDERBOOK = '0x00000000000000000000000000000000000b0b0b';
/** anvil's first dev account, unlocked. */
const SENDER = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';

describe('a block with more than 10 MiB of orderbook logs', () => {
  let anvil: Anvil;
  let block: bigint;

  beforeAll(async () => {
    anvil = await startAnvil();
    await anvil.request('anvil_setCode', [ORDERBOOK, EMITTER]);
    // Each transaction ~11.3M gas (under a 2^24 transaction cap): together more than the default 30M block.
    await anvil.request('evm_setBlockGasLimit', ['0x5f5e100']);
    await anvil.request('evm_setAutomine', [false]);
    for (let i = 0; i < LOGS; i++) await anvil.request('eth_sendTransaction', [{ from: SENDER, to: ORDERBOOK, gas: '0xf42400' }]);
    await anvil.request('evm_mine', []);
    await anvil.request('evm_setAutomine', [true]);
    block = BigInt(await anvil.request<string>('eth_blockNumber', []));
  }, 60_000);
  afterAll(async () => {
    await anvil?.stop();
  });

  it.each([
    ['read by hash', undefined],
    ['read by range', 0],
  ] as const)('is ingested whole (%s), not retried up to the deadline', async (_, lagHorizon) => {
    const settings = {
      chainId: anvil.chainId,
      orderbook: ORDERBOOK,
      rpcUrls: [anvil.rpcUrl],
      deploymentBlock: block,
      confirmations: 0,
      pollIntervalMs: 50,
      concurrency: 4,
      maxBlockRange: 64,
      deadlineMs: 5_000,
      ...(lagHorizon !== undefined && { lagHorizon }),
    };
    const report = await withStore('sqlite::memory:', async (store) => {
      const service = await IngesterService.start(store, settings, testLog());
      try {
        return await service.catchUp();
      } finally {
        service.close();
      }
    });
    expect(report).toMatchObject({ appended: LOGS });
  }, 60_000);
});
