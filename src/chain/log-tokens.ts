/** The token addresses a log mentions: those whose symbols must be recorded before the log. */
import { decodeRecordedOrderbookLog, type OrderV3 } from '../domain/orderbook-abi.ts';
import type { RecordedLog } from './rpc-log.ts';

const orderTokens = (order: OrderV3): string[] => [...order.validInputs, ...order.validOutputs].map((io) => io.token);

export function tokensOfLog(log: RecordedLog): string[] {
  const decoded = decodeRecordedOrderbookLog(log); // its data passed the HexData codec: lowercase, whole bytes
  switch (decoded.event) {
    case 'ClearV2':
      return [...orderTokens(decoded.args.alice), ...orderTokens(decoded.args.bob)];
    case 'TakeOrderV2':
      return orderTokens(decoded.args.config.order);
    default:
      return [];
  }
}
