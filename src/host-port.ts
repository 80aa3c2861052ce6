/** `host:port` as a URL writes it: an IPv6 literal (`::1`) goes in brackets. */
export const hostPort = (host: string, port: number): string => `${host.includes(':') ? `[${host}]` : host}:${port}`;
