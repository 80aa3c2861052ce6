/** Sending a transaction to the orderbook and stamping when it was mined, as the latency benches measure it. */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Hex, TransactionReceipt } from 'viem';
import { devnetClients } from '../../src/chain/devnet/index.ts';

export interface Mined {
  readonly hash: Hex;
  readonly receipt: TransactionReceipt;
  /** When anvil answered the send (automine mines the block first), or when the receipt became readable if it was not yet. */
  readonly mined: number;
}

/** A sender of orderbook calls on anvil; each resolves once its receipt is readable, and throws if it reverted. */
export function minedSender(rpcUrl: string, chainId: number, orderbook: Hex): (data: Hex) => Promise<Mined> {
  const { publicClient, walletClient } = devnetClients(rpcUrl, chainId);
  return async (data) => {
    const hash: Hex = await walletClient.sendTransaction({ to: orderbook, data });
    let mined = Date.now();
    let receipt = await publicClient.getTransactionReceipt({ hash }).catch(() => null);
    while (receipt === null) {
      await sleep(1);
      receipt = await publicClient.getTransactionReceipt({ hash }).catch(() => null);
      mined = Date.now();
    }
    if (receipt.status !== 'success') throw new Error(`transaction ${hash} reverted`);
    return { hash, receipt, mined };
  };
}
