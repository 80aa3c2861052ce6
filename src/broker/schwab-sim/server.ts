/** Routing and delivery: match the path, apply any injected fault, send, and journal. */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { handleControl, CONTROL_PREFIX, type SchwabSimControl } from './control.ts';
import { syncToClock, type SimCore } from './core.ts';
import { faultReply, runsHandler, type Fault } from './faults.ts';
import type { Outcome } from './journal.ts';
import type { Endpoint } from './model.ts';
import { schwabError, type Reply } from './reply.ts';
import { HANDLERS, type ApiRequest } from './trader.ts';

const ACCOUNT = '/trader/v1/accounts';
const ROUTES: ReadonlyArray<readonly [method: string, path: RegExp, endpoint: Endpoint]> = [
  ['GET', /^\/v1\/oauth\/authorize$/, 'authorize'],
  ['POST', /^\/v1\/oauth\/token$/, 'token'],
  ['GET', new RegExp(`^${ACCOUNT}/accountNumbers$`), 'accountNumbers'],
  ['GET', new RegExp(`^${ACCOUNT}/([^/]+)$`), 'positions'],
  ['POST', new RegExp(`^${ACCOUNT}/([^/]+)/orders$`), 'place'],
  ['GET', new RegExp(`^${ACCOUNT}/([^/]+)/orders$`), 'listOrders'],
  ['GET', new RegExp(`^${ACCOUNT}/([^/]+)/orders/([^/]+)$`), 'getOrder'],
  ['DELETE', new RegExp(`^${ACCOUNT}/([^/]+)/orders/([^/]+)$`), 'cancel'],
];

const MAX_BODY_BYTES = 1 << 20;

function matchRoute(method: string, pathname: string): { endpoint: Endpoint; params: string[] } | undefined {
  for (const [m, pattern, endpoint] of ROUTES) {
    const match = m === method ? pattern.exec(pathname) : null;
    if (match !== null) return { endpoint, params: match.slice(1).map(decodeURIComponent) };
  }
  return undefined;
}

async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, reply: Reply, correlId: string): number {
  res.writeHead(reply.status, {
    ...reply.headers,
    'Schwab-Client-CorrelId': correlId,
    'Content-Length': String(Buffer.byteLength(reply.body)),
  });
  res.end(reply.body);
  return reply.status;
}

/** Runs the handler unless a fault pre-empts it, then delivers the reply or the fault. */
function deliver(fault: Fault | undefined, run: () => Reply, res: ServerResponse, correlId: string): Outcome {
  if (fault === undefined) return send(res, run(), correlId);
  const handled = runsHandler(fault) ? run() : undefined;
  switch (fault.kind) {
    case 'timeout':
      if (fault.appliedAfterMs !== undefined) setTimeout(run, fault.appliedAfterMs).unref();
      return 'timeout'; // hold the socket; stop() destroys it
    case 'drop':
      res.socket?.destroy();
      return 'dropped';
    default:
      return send(res, faultReply(fault, handled), correlId);
  }
}

async function handle(core: SimCore, control: SchwabSimControl, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const correlId = randomUUID();
  const body = await readBody(req);
  if (body === undefined) {
    send(res, schwabError(413, 'Request body too large'), correlId);
    return;
  }
  // Schwab's Date header and its entry times come from one clock: the adapter reads the one to judge the other.
  res.setHeader('Date', core.clock.now().toUTCString());
  const url = new URL(req.url ?? '/', core.baseUrl);
  if (url.pathname.startsWith(CONTROL_PREFIX)) {
    send(res, handleControl(core, control, req.method ?? 'GET', url, body), correlId);
    return;
  }
  const now = syncToClock(core);
  const route = matchRoute(req.method ?? 'GET', url.pathname);
  const fault = route === undefined ? undefined : core.faults.take(route.endpoint);
  const apiRequest: ApiRequest = { url, headers: req.headers, body, params: route?.params ?? [], now };
  const status =
    route === undefined
      ? send(res, schwabError(404, `No route for ${req.method} ${url.pathname}`), correlId)
      : deliver(fault, () => HANDLERS[route.endpoint](core, apiRequest), res, correlId);
  core.journal.record({
    time: new Date(now).toISOString(),
    method: req.method ?? 'GET',
    path: req.url ?? '/',
    endpoint: route?.endpoint ?? 'unknown',
    status,
    correlId,
    ...(fault === undefined ? {} : { fault: fault.kind }),
  });
}

export function createRequestListener(core: SimCore, control: SchwabSimControl): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    handle(core, control, req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, schwabError(500, `Simulator error: ${(err as Error).message}`), randomUUID());
      else res.destroy();
    });
  };
}
