/** Vocabulary shared by the simulator's modules. */

/** Every status Schwab documents; the simulator may also report strings outside this list. */
export const ORDER_STATUSES = [
  'AWAITING_PARENT_ORDER', 'AWAITING_CONDITION', 'AWAITING_STOP_CONDITION', 'AWAITING_MANUAL_REVIEW', 'ACCEPTED',
  'AWAITING_UR_OUT', 'PENDING_ACTIVATION', 'QUEUED', 'WORKING', 'REJECTED', 'PENDING_CANCEL', 'CANCELED',
  'PENDING_REPLACE', 'REPLACED', 'FILLED', 'EXPIRED', 'NEW', 'AWAITING_RELEASE_TIME', 'PENDING_ACKNOWLEDGEMENT',
  'PENDING_RECALL', 'UNKNOWN',
] as const;

export type Instruction = 'BUY' | 'SELL';

/** The API calls the simulator counts and can inject faults into. */
export const ENDPOINTS = ['authorize', 'token', 'accountNumbers', 'positions', 'place', 'getOrder', 'listOrders', 'cancel'] as const;
export type Endpoint = (typeof ENDPOINTS)[number];

export interface AccountInfo {
  readonly accountNumber: string;
  readonly hashValue: string;
}

export const TERMINAL_STATUSES: ReadonlySet<string> = new Set(['FILLED', 'CANCELED', 'REJECTED', 'EXPIRED', 'REPLACED']);
