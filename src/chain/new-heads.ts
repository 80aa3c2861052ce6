/**
 * Between steps the follower waits for a new head: a websocket endpoint's `newHeads`
 * subscription wakes it at once; the poll interval is the fallback (and the only clock
 * without a websocket). A wake-up only starts the next step: the logs still come from eth_getLogs.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createPublicClient, webSocket } from 'viem';
import type { Logger } from '../log.ts';
import { closeSockets, endpointLabel } from './rpc.ts';

export class NewHeads {
  private wake: (() => void) | null = null;
  private readonly stop: () => void;

  constructor(wsUrl: string | undefined, log: Logger) {
    this.stop = wsUrl === undefined ? () => {} : this.subscribe(wsUrl, log);
  }

  /** Resolves at the next head announced, after `ms`, or when `signal` aborts, whichever comes first. */
  async next(ms: number, signal: AbortSignal): Promise<void> {
    const woken = new AbortController();
    this.wake = () => woken.abort();
    await sleep(ms, undefined, { signal: AbortSignal.any([signal, woken.signal]) }).catch(() => undefined);
    this.wake = null;
  }

  close(): void {
    this.stop();
  }

  private subscribe(url: string, log: Logger): () => void {
    const client = createPublicClient({ transport: webSocket(url, { retryCount: 0 }) });
    const unwatch = client.watchBlockNumber({
      onBlockNumber: () => this.wake?.(),
      onError: (error) => log.warn({ endpoint: endpointLabel(url), error: error.message.split('\n')[0] }, 'newHeads subscription failed; polling meanwhile'),
    });
    return () => {
      unwatch();
      closeSockets([url]);
    };
  }
}
