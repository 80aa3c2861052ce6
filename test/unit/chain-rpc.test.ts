/** ChainRpc's errors and log lines: whatever viem's messages quote, an endpoint shows by scheme and host only. */
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { ChainRpc } from '../../src/chain/rpc.ts';
import { DeadlineExceeded } from '../../src/chain/retry.ts';

/** A logger whose lines are kept, as JSON text. */
const capturing = () => {
  const lines: string[] = [];
  return { lines, log: pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) }) };
};

describe('ChainRpc', () => {
  it('masks an endpoint URL that viem quotes in its errors (fetch cannot parse this one)', async () => {
    const { lines, log } = capturing();
    const url = 'http://127.0.0.1:99999/v2/SECRETKEY123';
    const error = await ChainRpc.connect({ urls: [url], chainId: 8453, deadlineMs: 300, log }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(DeadlineExceeded);
    expect((error as Error).message).toMatch(/^eth_chainId from <unparsable URL>: still failing .*: HTTP request failed: Failed to parse URL from <unparsable URL>$/);
    expect(lines.length).toBeGreaterThan(0);
    expect([(error as Error).message, ...lines].filter((text) => text.includes('SECRETKEY123'))).toEqual([]);
  });
});
