/** Validation of Trader API inputs, with messages that say what to fix. */
import type { Decoded } from './codecs.ts';
import { ORDER_STATUSES, type Instruction } from './model.ts';
import type { OrderQuery, PlaceRequest } from './orders.ts';

const LIST_WINDOW_MS = 60 * 24 * 60 * 60_000;
const DEFAULT_MAX_RESULTS = 3000;

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === 'object' && u !== null && !Array.isArray(u);
const ok = <A>(value: A): Decoded<A> => ({ ok: true, value });
const fail = <A>(...errors: string[]): Decoded<A> => ({ ok: false, errors });

function expectField(body: Record<string, unknown>, key: string, expected: string, errors: string[]): void {
  if (body[key] !== expected) errors.push(`${key} must be ${expected} (got ${JSON.stringify(body[key]) ?? 'nothing'})`);
}

function parseInstruction(value: unknown, errors: string[]): Instruction | undefined {
  if (value === 'BUY' || value === 'SELL') return value;
  errors.push('instruction must be BUY or SELL');
  return undefined;
}

function parseQuantity(value: unknown, errors: string[]): bigint | undefined {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) return BigInt(value);
  errors.push('quantity must be a whole, positive number of shares (fractional quantities are not supported)');
  return undefined;
}

function parseSymbol(instrument: unknown, knownSymbol: (symbol: string) => boolean, errors: string[]): string | undefined {
  const fields = isRecord(instrument) ? instrument : {};
  if (fields['assetType'] !== 'EQUITY') errors.push('instrument.assetType must be EQUITY');
  const symbol = fields['symbol'];
  if (typeof symbol !== 'string' || symbol === '') errors.push('instrument.symbol is required');
  else if (!knownSymbol(symbol)) errors.push(`Symbol ${symbol} is not a valid symbol`);
  else return symbol;
  return undefined;
}

function parseLeg(leg: unknown, knownSymbol: (symbol: string) => boolean, errors: string[]): PlaceRequest | undefined {
  const fields = isRecord(leg) ? leg : {};
  const instruction = parseInstruction(fields['instruction'], errors);
  const quantity = parseQuantity(fields['quantity'], errors);
  const symbol = parseSymbol(fields['instrument'], knownSymbol, errors);
  return instruction === undefined || quantity === undefined || symbol === undefined ? undefined : { symbol, instruction, quantity };
}

/** A single-leg MARKET / NORMAL / DAY equity order for whole shares of a priced symbol. */
export function parsePlaceOrder(body: string, knownSymbol: (symbol: string) => boolean): Decoded<PlaceRequest> {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return fail('request body is not valid JSON');
  }
  if (!isRecord(json)) return fail('the order must be a JSON object');
  const errors: string[] = [];
  expectField(json, 'orderType', 'MARKET', errors);
  expectField(json, 'session', 'NORMAL', errors);
  expectField(json, 'duration', 'DAY', errors);
  expectField(json, 'orderStrategyType', 'SINGLE', errors);
  const legs = json['orderLegCollection'];
  if (!Array.isArray(legs) || legs.length !== 1) return fail(...errors, 'orderLegCollection must hold exactly one leg');
  const request = parseLeg(legs[0], knownSymbol, errors);
  return request === undefined || errors.length > 0 ? fail(...errors) : ok(request);
}

const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,3})?(Z|[+-]\d{2}:\d{2})$/;

/** `2025-09-08T13:30:00.000Z`; rejects impossible dates that Date.parse would roll over. */
function parseTime(text: string): number | undefined {
  const m = ISO_TIME.exec(text);
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) return undefined;
  return Date.parse(text);
}

function requiredTime(params: URLSearchParams, name: string, errors: string[]): number | undefined {
  const text = params.get(name);
  if (text === null || text === '') {
    errors.push(`${name} is required`);
    return undefined;
  }
  const ms = parseTime(text);
  if (ms === undefined) errors.push(`${name} must look like 2025-09-08T13:30:00.000Z (got ${text})`);
  return ms;
}

function optionalStatus(params: URLSearchParams, errors: string[]): { status?: string } {
  const status = params.get('status');
  if (status === null) return {};
  if (!(ORDER_STATUSES as readonly string[]).includes(status)) errors.push(`status ${status} is not a valid order status`);
  return { status };
}

function maxResults(params: URLSearchParams, errors: string[]): number {
  const text = params.get('maxResults');
  if (text === null) return DEFAULT_MAX_RESULTS;
  if (!/^[1-9][0-9]{0,8}$/.test(text)) errors.push(`maxResults must be a positive integer (got ${text})`);
  return Number(text);
}

/** fromEnteredTime and toEnteredTime are both required, from at most 60 days back. */
export function parseOrderQuery(params: URLSearchParams, now: number): Decoded<OrderQuery> {
  const errors: string[] = [];
  const from = requiredTime(params, 'fromEnteredTime', errors);
  const to = requiredTime(params, 'toEnteredTime', errors);
  if (from !== undefined && from < now - LIST_WINDOW_MS) errors.push('fromEnteredTime must be within the last 60 days');
  if (from !== undefined && to !== undefined && from > to) errors.push('fromEnteredTime must not be after toEnteredTime');
  const status = optionalStatus(params, errors);
  const limit = maxResults(params, errors);
  if (errors.length > 0 || from === undefined || to === undefined) return fail(...errors);
  return ok({ from, to, maxResults: limit, ...status });
}
