/**
 * A broker whose every request is timed and whose every error is counted: the `run` service's
 * view of the broker for /metrics. The broker itself stays unaware of metrics.
 */
import type { Broker } from './port.ts';

/** The two instruments it needs (prom-client's Histogram and Counter fit). */
export interface BrokerInstruments {
  readonly brokerLatency: { startTimer(labels: { operation: string }): () => unknown };
  readonly errors: { inc(labels: { component: string; kind: string }): void };
}

export function instrumented(broker: Broker, metrics: BrokerInstruments): Broker {
  const timed = async <T>(operation: string, call: () => Promise<T>): Promise<T> => {
    const done = metrics.brokerLatency.startTimer({ operation });
    try {
      return await call();
    } catch (error) {
      metrics.errors.inc({ component: 'broker', kind: error instanceof Error ? error.name : 'Error' });
      throw error;
    } finally {
      done();
    }
  };
  return {
    name: broker.name,
    place: (intent, signal) => timed('place', () => broker.place(intent, signal)),
    status: (brokerOrderId, intent) => timed('status', () => broker.status(brokerOrderId, intent)),
    findPlaced: (intent, linked) => timed('find_placed', () => broker.findPlaced(intent, linked)),
    unlinkedOrders: (symbol, since, linked) => timed('unlinked_orders', () => broker.unlinkedOrders(symbol, since, linked)),
    cancel: (brokerOrderId, signal) => timed('cancel', () => broker.cancel(brokerOrderId, signal)),
  };
}
