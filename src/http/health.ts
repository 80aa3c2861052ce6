/**
 * Liveness of the roles running in this process and the readiness they add up to. A role
 * registers a `health()` callback; so does any other readiness condition (the ingester's
 * lag bound, via `lagWithin`).
 */
import type { Position } from '../eventstore/port.ts';
import type { FollowerStatus } from '../services/ledger-follower.ts';

export interface RoleHealth {
  readonly alive: boolean;
  readonly detail?: string;
}

export type HealthCheck = () => RoleHealth | Promise<RoleHealth>;

export class Roles {
  private readonly checks = new Map<string, HealthCheck>();

  register(name: string, health: HealthCheck): void {
    if (this.checks.has(name)) throw new Error(`role ${name} is already registered`);
    this.checks.set(name, health);
  }

  /** Every role's answer; a callback that throws reports its role dead, with the error. */
  async report(): Promise<Record<string, RoleHealth>> {
    const entries = await Promise.all(
      [...this.checks].map(async ([name, health]): Promise<[string, RoleHealth]> => {
        try {
          return [name, await health()];
        } catch (error) {
          return [name, { alive: false, detail: `health check failed: ${(error as Error).message}` }];
        }
      }),
    );
    return Object.fromEntries(entries);
  }
}

/** A readiness check that fails while `lag()` (e.g. blocks behind the chain head) exceeds `bound`; undefined: not measured yet. */
export const lagWithin = (bound: number, lag: () => number | undefined, unit = 'blocks'): HealthCheck => () => {
  const current = lag();
  if (current === undefined) return { alive: false, detail: 'lag not measured yet' };
  return { alive: current <= bound, detail: `${current} ${unit} behind (bound ${bound})` };
};

export interface Readiness {
  readonly ready: boolean;
  readonly reasons: string[];
}

/** What the API needs of the ledger follower to judge readiness. */
export interface FollowerHealth {
  status(): Promise<FollowerStatus>;
}

const show = (p: Position | null): string => p ?? 'the start';

async function followerReasons(follower: FollowerHealth): Promise<string[]> {
  let status: FollowerStatus;
  try {
    status = await follower.status();
  } catch (error) {
    return [`store unreachable: ${(error as Error).message}`];
  }
  if (status.state === 'failed' || status.state === 'stopped') return [`ledger follower ${status.state}`];
  return status.caughtUp ? [] : [`ledger follower at ${show(status.position)}, behind the store's head ${show(status.head)}`];
}

/** Ready when the store answers, the ledger follower has reached its head, and every role is alive. */
export async function readiness(follower: FollowerHealth, roles: Roles): Promise<Readiness> {
  const [fromFollower, report] = await Promise.all([followerReasons(follower), roles.report()]);
  const dead = Object.entries(report)
    .filter(([, h]) => !h.alive)
    .map(([name, h]) => `${name} not alive${h.detail === undefined ? '' : `: ${h.detail}`}`);
  const reasons = [...fromFollower, ...dead];
  return { ready: reasons.length === 0, reasons };
}
