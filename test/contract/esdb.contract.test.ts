/**
 * The store contract on EventStoreDB / KurrentDB. Needs a server, so it runs only when
 * EVENTSTORE_URL names one (docs/event-store.md has a docker-compose recipe).
 */
import { describe, it } from 'vitest';
import { openStore } from '../../src/eventstore/url.ts';
import { describeStoreContract } from './suite.ts';

const url = process.env.EVENTSTORE_URL;

if (url) {
  describeStoreContract(`EventStoreDB at ${url}`, {
    open: () => openStore(url),
    openSecondWriter: () => openStore(url),
    childProcessUrl: () => url,
  });
} else {
  const reason = 'EventStoreDB contract suite skipped: set EVENTSTORE_URL=esdb://localhost:2113?tls=false to run it';
  console.log(reason);
  describe('EventStore contract: EventStoreDB', () => {
    it.skip(reason, () => {});
  });
}
