/** The read-only routes: each decodes its parameters and answers with the CLI's `--json` shapes. */
import type * as t from 'io-ts';
import type { EventStore, Json } from '../eventstore/port.ts';
import { hedgesJson, positionsJson, rejectionJson, tradeJson } from '../../projections/queries.ts';
import { reached, type LedgerFollower } from '../services/ledger-follower.ts';
import { readiness, type Roles } from './health.ts';
import type { Metrics } from './metrics.ts';
import { HedgeStatus, Limit, RejectionReason, decodeParameter, decodeQuery } from './query.ts';
import { Ticker } from '../domain/codecs.ts';
import { HttpProblem, json, problem, type Reply } from './reply.ts';

export interface ApiContext {
  readonly follower: LedgerFollower;
  readonly store: Pick<EventStore, 'readCheckpoint'>;
  readonly metrics: Metrics;
  readonly roles: Roles;
  /** Named consumers whose checkpoints `/status` reports (e.g. the accumulator's). */
  readonly checkpoints: readonly string[];
}

export interface Route {
  readonly pattern: RegExp;
  /** `params`: the pattern's captures, percent-decoded. */
  handle(query: URLSearchParams, params: readonly string[]): Promise<Reply> | Reply;
}

const DEFAULT_LIMIT = 100;

/** A route taking the query parameters `props` (all optional). */
const route = <P extends t.Props>(pattern: RegExp, props: P, handle: (query: t.TypeOf<t.PartialC<P>>, params: readonly string[]) => Promise<Reply> | Reply): Route => ({
  pattern,
  handle: (query, params) => handle(decodeQuery(query, props), params),
});

function positionOf(follower: LedgerFollower, symbol: string): Reply {
  const found = positionsJson(follower.view).find((p) => p.symbol === symbol);
  if (found === undefined) throw new HttpProblem(problem(404, 'unknown symbol', { symbol }));
  return json(200, found);
}

async function status(ctx: ApiContext): Promise<Json> {
  const [follower, roles] = await Promise.all([ctx.follower.status(), ctx.roles.report()]);
  const checkpoints = await Promise.all(
    ctx.checkpoints.map(async (name) => {
      const at = (await ctx.store.readCheckpoint(name))?.position ?? null;
      return [name, { position: at, caughtUp: reached(at, follower.head) }] as const;
    }),
  );
  const { state, position, eventsFolded, lastEventAt, caughtUp } = follower;
  return {
    head: follower.head,
    follower: { state, position, eventsFolded, lastEventAt, caughtUp },
    checkpoints: Object.fromEntries(checkpoints),
    roles: Object.fromEntries(Object.entries(roles).map(([name, h]) => [name, { alive: h.alive, detail: h.detail ?? null }])),
  };
}

export function apiRoutes(ctx: ApiContext): readonly Route[] {
  const { follower } = ctx;
  const limit = Limit(follower.retention);
  const defaultLimit = Math.min(DEFAULT_LIMIT, follower.retention);
  return [
    route(/^\/health\/live$/, {}, () => json(200, { status: 'ok' })),
    route(/^\/health\/ready$/, {}, async () => {
      const { ready, reasons } = await readiness(follower, ctx.roles);
      return json(ready ? 200 : 503, { status: ready ? 'ready' : 'not_ready', reasons });
    }),
    route(/^\/metrics$/, {}, async () => ({ status: 200, headers: { 'Content-Type': ctx.metrics.registry.contentType }, body: await ctx.metrics.registry.metrics() })),
    route(/^\/positions$/, {}, () => json(200, positionsJson(follower.view))),
    route(/^\/positions\/([^/]+)$/, {}, (_, [symbol]) => positionOf(follower, decodeParameter('symbol', Ticker, symbol))),
    route(/^\/hedges$/, { status: HedgeStatus }, (q) => json(200, hedgesJson(follower.view).filter((h) => q.status === undefined || h.status === q.status))),
    route(/^\/trades$/, { limit, symbol: Ticker }, (q) => json(200, follower.trades(q.limit ?? defaultLimit, q.symbol).map(tradeJson))),
    route(/^\/rejected$/, { limit, reason: RejectionReason }, (q) => json(200, follower.rejections(q.limit ?? defaultLimit, q.reason).map(rejectionJson))),
    route(/^\/status$/, {}, async () => json(200, await status(ctx))),
  ];
}
