/**
 * The paper broker: fills every order in full at the command's reference price (the symbol's
 * last onchain price), once `fillDelayMs` has passed since the intent was recorded. It keeps
 * no state: the order id is derived from the command, so a restart finds the same order.
 */
import type { Broker, BrokerOrderState, HedgeOrderIntent } from './port.ts';
import { fromBigInt, ZERO } from '../domain/decimal.ts';

const orderId = (intent: HedgeOrderIntent): string => `paper-${intent.commandId}`;

export class PaperBroker implements Broker {
  readonly name = 'paper';

  constructor(private readonly options: { fillDelayMs?: number; now?: () => number } = {}) {}

  async place(intent: HedgeOrderIntent): Promise<{ brokerOrderId: string }> {
    return { brokerOrderId: orderId(intent) };
  }

  async status(_brokerOrderId: string, intent: HedgeOrderIntent): Promise<BrokerOrderState> {
    const now = this.options.now?.() ?? Date.now();
    if (now < intent.intentAt.getTime() + (this.options.fillDelayMs ?? 0)) return { status: 'open', brokerStatus: 'WORKING', filledQuantity: ZERO };
    if (intent.referencePrice === null) return { status: 'failed', reason: 'no onchain price to fill at', filledQuantity: ZERO, averagePrice: null };
    return { status: 'filled', filledQuantity: fromBigInt(intent.quantity), averagePrice: intent.referencePrice };
  }

  async findPlaced(intent: HedgeOrderIntent, linked: ReadonlySet<string>): Promise<string | undefined> {
    return linked.has(orderId(intent)) ? undefined : orderId(intent);
  }

  /** Its order ids derive from the command: a restored command finds its own, never another's. */
  async unlinkedOrders(): Promise<string[]> {
    return [];
  }

  async cancel(): Promise<void> {}
}
