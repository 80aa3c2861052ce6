/**
 * Between steps the follower waits for a new head: a websocket endpoint's `newHeads`
 * subscription wakes it at once; the poll interval is the fallback (and the only clock
 * without a websocket). A wake-up only starts the next step: the logs still come from eth_getLogs.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createPublicClient, webSocket } from 'viem';
import type { Logger } from '../log.ts';
import { closeDeadSockets, closeSockets, endpointLabel } from './rpc.ts';
import { backoffDelay } from '../backoff.ts';

export class NewHeads {
  private wake: (() => void) | null = null;
  private readonly stop: () => void;

  constructor(wsUrl: string | undefined, log: Logger) {
    this.stop = wsUrl === undefined ? () => {} : this.subscribe(wsUrl, log);
  }

  /** Resolves at the next head announced, after `ms`, or when `signal` aborts, whichever comes first. */
  async next(ms: number, signal: AbortSignal): Promise<void> {
    // A listener removed after each wait, not AbortSignal.any: on Node 20 every any() stays
    // attached to the long-lived signal, one per poll, for as long as the service runs.
    const woken = new AbortController();
    const stop = () => woken.abort();
    this.wake = stop;
    signal.addEventListener('abort', stop, { once: true });
    if (signal.aborted) stop();
    await sleep(ms, undefined, { signal: woken.signal }).catch(() => undefined);
    signal.removeEventListener('abort', stop);
    this.wake = null;
  }

  close(): void {
    this.stop();
  }

  /**
   * Subscribes, and subscribes again after each failure, after 1 s doubling to 30 s (jittered,
   * back to 1 s once a head arrives): viem's own reconnecting gives up for good after 5 tries.
   */
  private subscribe(url: string, log: Logger): () => void {
    let unwatch = () => {};
    let retry: NodeJS.Timeout | undefined;
    let failures = 0;
    let stopped = false;
    const failed = (error: Error) => {
      if (stopped || retry !== undefined) return; // one failure can report several errors
      const delayMs = backoffDelay(failures++, RESUBSCRIBE_MS);
      log.warn({ endpoint: endpointLabel(url), error: error.message.split('\n')[0], retryInMs: Math.round(delayMs) }, 'newHeads subscription failed; polling meanwhile');
      unwatch();
      closeDeadSockets([url]);
      retry = setTimeout(() => ((retry = undefined), start()), delayMs);
    };
    const start = () => {
      const client = createPublicClient({ transport: webSocket(url, { retryCount: 0, reconnect: false }) });
      // The socket first, then the subscription on it: viem keeps a socket (where closeSockets finds it) only once it is
      // open, so one still connecting when this is closed would open afterwards and stay open, keeping the process alive
      // (a SIGTERM right after start then ran into the shutdown timeout). Closed meanwhile, it is closed once open.
      client.transport.getRpcClient().then(
        (socket) => {
          if (stopped) return socket.close();
          unwatch = client.watchBlockNumber({
            onBlockNumber: () => {
              failures = 0;
              this.wake?.();
            },
            onError: failed,
          });
        },
        (error: unknown) => failed(error instanceof Error ? error : new Error(String(error))),
      );
    };
    start();
    return () => {
      stopped = true;
      clearTimeout(retry);
      retry = undefined;
      unwatch();
      closeSockets([url]);
    };
  }
}

const RESUBSCRIBE_MS = { min: 1_000, max: 30_000 };
