import { describe, expect, it } from 'vitest';
import { instrumented } from '../../src/broker/instrumented.ts';
import { PaperBroker } from '../../src/broker/paper.ts';
import { BrokerUnavailable, type HedgeOrderIntent } from '../../src/broker/port.ts';
import { createMetrics } from '../../src/http/metrics.ts';

const intent: HedgeOrderIntent = { commandId: 'c1', symbol: 'GME', side: 'BUY', quantity: 1n, referencePrice: null, intentAt: new Date(0) };

const samples = async (metrics: ReturnType<typeof createMetrics>) => ({
  latency: (await metrics.brokerLatency.get()).values.filter((v) => v.metricName?.endsWith('_count')).map((v) => [v.labels['operation'], v.value]),
  errors: (await metrics.errors.get()).values.map((v) => [v.labels['component'], v.labels['kind'], v.value]),
});

describe('instrumented broker', () => {
  it('times every request by operation and answers what the broker answers', async () => {
    const metrics = createMetrics();
    const broker = instrumented(new PaperBroker(), metrics);
    const { brokerOrderId } = await broker.place(intent);
    expect(brokerOrderId).toBe('paper-c1');
    expect(await broker.status(brokerOrderId, intent)).toMatchObject({ status: 'failed', reason: 'no onchain price to fill at' });
    await broker.status(brokerOrderId, intent);
    expect(await samples(metrics)).toEqual({ latency: [['place', 1], ['status', 2]], errors: [] });
  });

  it('counts a failed request by its error, times it, and rethrows it unchanged', async () => {
    const metrics = createMetrics();
    const down = new BrokerUnavailable('HTTP 503');
    const broker = instrumented(Object.assign(new PaperBroker(), { cancel: () => Promise.reject(down) }), metrics);
    await expect(broker.cancel('x')).rejects.toBe(down);
    expect(await samples(metrics)).toEqual({ latency: [['cancel', 1]], errors: [['broker', 'BrokerUnavailable', 1]] });
  });
});
