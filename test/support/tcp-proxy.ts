/** A TCP proxy in front of a local port that can go down (every connection cut, new ones refused) and come back. */
import { connect, createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface TcpProxy {
  readonly port: number;
  /** Down: open connections are cut and new ones closed at once; up: new ones pass again. */
  setDown(down: boolean): void;
  /** Held: new connections are accepted but not passed on (a handshake that has not completed yet) until released. */
  hold(held: boolean): void;
  /** Client connections accepted so far, and those still open. */
  readonly accepted: number;
  readonly open: number;
  close(): Promise<void>;
}

export async function tcpProxy(targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const clients = new Set<Socket>();
  let down = false;
  let accepted = 0;
  let held: (() => void)[] | undefined;
  const server = createServer((client) => {
    if (down) return void client.destroy();
    accepted++;
    clients.add(client);
    client.on('close', () => clients.delete(client));
    client.pause();
    if (held) held.push(() => pass(client));
    else pass(client);
  });
  const pass = (client: Socket) => {
    const upstream = connect(targetPort, '127.0.0.1');
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', end).on('close', end);
    }
    client.pipe(upstream).pipe(client);
    client.resume();
  };
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  const cutAll = () => sockets.forEach((socket) => socket.destroy());
  return {
    port: (server.address() as AddressInfo).port,
    get accepted() {
      return accepted;
    },
    get open() {
      return clients.size;
    },
    setDown(value) {
      down = value;
      if (down) cutAll();
    },
    hold(value) {
      const release = held ?? [];
      held = value ? [] : undefined;
      if (!value) release.forEach((passOn) => passOn());
    },
    close: () => new Promise<void>((closed) => (cutAll(), server.close(() => closed()))),
  };
}
