/**
 * Polling an order: the answer must describe the order asked about, as the intent placed it.
 * An answer that parses but is about another order (another id, another symbol, side or
 * quantity) is not an outcome to record: the executor keeps polling (BrokerUnavailable)
 * instead of moving `net` by another order's fill.
 */
import { describe, expect, it } from 'vitest';
import { BrokerUnavailable, type HedgeOrderIntent } from '../../src/broker/port.ts';
import { fakeSchwabBroker } from '../support/fake-schwab.ts';

const NOW = new Date('2025-09-10T14:01:00Z');
const OURS = '1004055538154';
const intent: HedgeOrderIntent = { commandId: 'c', symbol: 'GME', side: 'BUY', quantity: 3n, referencePrice: null, intentAt: new Date('2025-09-10T14:00:00Z') };

interface Shape {
  orderId?: string;
  status?: string;
  symbol?: string;
  instruction?: string;
  quantity?: string;
}

const order = ({ orderId = OURS, status = 'FILLED', symbol = 'GME', instruction = 'BUY', quantity = '3.0' }: Shape): string =>
  `{"orderId":${orderId},"status":"${status}","orderType":"MARKET","enteredTime":"2025-09-10T14:00:05+0000",
    "orderLegCollection":[{"instruction":"${instruction}","quantity":${quantity},"instrument":{"symbol":"${symbol}","assetType":"EQUITY"}}],
    "orderActivityCollection":[{"activityType":"EXECUTION","executionLegs":[{"quantity":${quantity},"price":22.7299}]}]}`;

const poll = (shape: Shape) => fakeSchwabBroker(() => ({ status: 200, body: order(shape) }), () => NOW).status(OURS, intent);

describe('status() of an order', () => {
  it('records the outcome of the order asked about', async () => {
    await expect(poll({})).resolves.toMatchObject({ status: 'filled' });
  });

  it.each<[string, Shape]>([
    ['another order id (100 shares of it filled)', { orderId: '1004055538999', quantity: '100.0' }],
    ['another order id, alike in symbol, side and quantity', { orderId: '1004055538999' }],
    ['another symbol', { symbol: 'AAPL' }],
    ['another side', { instruction: 'SELL' }],
    ['another quantity', { quantity: '30.0' }],
  ])('refuses an answer about %s: keeps polling, records nothing', async (_name, shape) => {
    await expect(poll(shape)).rejects.toThrow(BrokerUnavailable);
  });
});

describe('cancel() of an order', () => {
  const cancel = (status: number) => fakeSchwabBroker(() => ({ status, body: '{"message":"order not cancelable"}' }), () => NOW).cancel(OURS);

  it('takes a 400 as an order already terminal or being cancelled: no error, the next poll tells the outcome', async () => {
    await expect(cancel(200)).resolves.toBeUndefined();
    await expect(cancel(400)).resolves.toBeUndefined();
  });

  it('takes any other answer as the broker unavailable: the cancel is asked again', async () => {
    for (const status of [401, 404, 429, 500, 503]) await expect(cancel(status), String(status)).rejects.toThrow(BrokerUnavailable);
  });
});
