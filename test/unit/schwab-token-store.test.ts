/** Tokens at rest: AES-256-GCM in one file, nothing in clear, no earlier token kept anywhere. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EncryptedTokenFile, TokenFileError, parseEncryptionKey, type StoredTokens } from '../../src/broker/schwab/token-store.ts';
import { schwabSettings } from '../../src/broker/schwab/index.ts';
import { BrokerNeedsOperator } from '../../src/broker/port.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tokens-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const tokens = (n: number): StoredTokens => ({
  accessToken: `I0.access-${n}-${'x'.repeat(40)}@`,
  accessExpiresAt: '2025-09-10T14:30:00.000Z',
  refreshToken: `refresh-${n}-${'y'.repeat(40)}@`,
  refreshExpiresAt: '2025-09-17T14:00:00.000Z',
});

describe('EncryptedTokenFile', () => {
  it('round-trips, holds nothing in clear, and is readable by its owner only', async () => {
    const file = new EncryptedTokenFile(join(dir, 'nested', 'tokens.json'), randomBytes(32));
    expect(await file.load()).toBeUndefined();
    await file.save(tokens(1));
    expect(await file.load()).toEqual(tokens(1));
    const raw = readFileSync(file.path, 'utf8');
    expect(raw).not.toMatch(/access-1|refresh-1|2025-09/);
    expect(JSON.parse(raw)).toMatchObject({ version: 1 });
    expect(statSync(file.path).mode & 0o777).toBe(0o600);
  });

  it('replaces the file whole: no earlier token, no temporary file survives', async () => {
    const file = new EncryptedTokenFile(join(dir, 'tokens.json'), randomBytes(32));
    await file.save(tokens(1));
    const before = readFileSync(file.path, 'utf8');
    await file.save(tokens(2));
    expect(readdirSync(dir)).toEqual(['tokens.json']);
    expect(await file.load()).toEqual(tokens(2));
    expect(JSON.parse(readFileSync(file.path, 'utf8')).iv).not.toBe(JSON.parse(before).iv);
  });

  it('refuses a wrong key or a tampered file, and says what to do', async () => {
    const key = randomBytes(32);
    const file = new EncryptedTokenFile(join(dir, 'tokens.json'), key);
    await file.save(tokens(1));
    await expect(new EncryptedTokenFile(file.path, randomBytes(32)).load()).rejects.toThrow(/wrong TOKEN_ENCRYPTION_KEY.*hedge-ledger auth login/);
    const envelope = JSON.parse(readFileSync(file.path, 'utf8'));
    const flipped = Buffer.from(envelope.ciphertext, 'base64');
    flipped[0] = flipped[0]! ^ 1;
    writeFileSync(file.path, JSON.stringify({ ...envelope, ciphertext: flipped.toString('base64') }));
    await expect(file.load()).rejects.toThrow(TokenFileError);
    writeFileSync(file.path, '{"not":"tokens"}');
    await expect(file.load()).rejects.toThrow(TokenFileError);
    // An operator problem: the executor waits and says so (run --once stops), it does not retry as if the broker were down.
    await expect(file.load()).rejects.toBeInstanceOf(BrokerNeedsOperator);
  });

  it('a file that cannot be read is an operator problem too, named with the reason, not a broker outage', async () => {
    const file = new EncryptedTokenFile(dir, randomBytes(32)); // a directory where the file should be
    await expect(file.load()).rejects.toBeInstanceOf(TokenFileError);
    await expect(file.load()).rejects.toThrow(/^cannot read the token file .* \(EISDIR\): /);
  });
});

describe('TOKEN_ENCRYPTION_KEY', () => {
  it('is 32 bytes as hex or base64', () => {
    const key = randomBytes(32);
    expect(parseEncryptionKey(key.toString('hex'))).toEqual(key);
    expect(parseEncryptionKey(` ${key.toString('base64')}\n`)).toEqual(key);
    expect(parseEncryptionKey(key.toString('base64').slice(0, 43))).toEqual(key); // the padding left off: still canonical
    expect(() => parseEncryptionKey('c2hvcnQ=')).toThrow(/32 bytes.*openssl rand -base64 32/);
  });

  it('refuses a passphrase, or base64 that is not canonical, although Node decodes them to 32 bytes; the error does not quote them', () => {
    const base64 = randomBytes(32).toString('base64');
    const spareBitsSet = `${base64.slice(0, 42)}${String.fromCharCode(base64.charCodeAt(42) + 1)}=`; // the last character's 2 spare bits: Node ignores them
    for (const text of ['my ledger password is hunter22, nobody will guess it!', spareBitsSet, spareBitsSet.slice(0, 43)]) {
      expect(Buffer.from(text, 'base64')).toHaveLength(32);
      expect(() => parseEncryptionKey(text)).toThrow(/^TOKEN_ENCRYPTION_KEY must be 32 bytes, as 64 hex digits or base64 \(generate one with `openssl rand -base64 32`\)$/);
    }
  });

  it('missing or malformed stops Schwab with a clear configuration error', () => {
    const config = loadConfig({ env: { SCHWAB_APP_KEY: 'key' } });
    const problems = (env: NodeJS.ProcessEnv): string => {
      try {
        schwabSettings(config, 'run --broker schwab', env);
      } catch (e) {
        if (e instanceof ConfigError) return e.message;
        throw e;
      }
      return 'no error';
    };
    expect(problems({ SCHWAB_APP_SECRET: 's' })).toMatch(/run --broker schwab needs env TOKEN_ENCRYPTION_KEY: 32 random bytes.*openssl rand -base64 32/);
    expect(problems({ SCHWAB_APP_SECRET: 's', TOKEN_ENCRYPTION_KEY: 'too short' })).toMatch(/env TOKEN_ENCRYPTION_KEY: .*32 bytes/);
    expect(problems({ TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('hex') })).toMatch(/needs env SCHWAB_APP_SECRET/);
    expect(() => schwabSettings(loadConfig({ env: {} }), 'auth login', {})).toThrow(/auth login needs schwabAppKey \(env SCHWAB_APP_KEY/);
  });
});
