/**
 * Schwab tokens at rest: one file, AES-256-GCM with the key from TOKEN_ENCRYPTION_KEY.
 * Each save writes a fresh file (new IV) beside the old one and renames it over, so a
 * crash never leaves a torn file and no earlier token survives anywhere on disk.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as t from 'io-ts';
import * as E from 'fp-ts/lib/Either.js';
import { IsoTime } from '../../domain/codecs.ts';
import { BrokerNeedsOperator } from '../port.ts';

export const StoredTokens = t.type({
  accessToken: t.string,
  accessExpiresAt: IsoTime,
  refreshToken: t.string,
  /** Seven days from the login; a refresh does not extend it. */
  refreshExpiresAt: IsoTime,
});
export type StoredTokens = t.TypeOf<typeof StoredTokens>;

const Envelope = t.type({ version: t.literal(1), iv: t.string, tag: t.string, ciphertext: t.string });

/** Binds the ciphertext to its purpose: a file from something else does not decrypt as tokens. */
const AAD = Buffer.from('hedge-ledger schwab tokens v1');

/** A missing or wrong key, or a damaged token file: only an operator can fix it, so the executor waits (or `run --once` stops) and says so. */
export class TokenFileError extends BrokerNeedsOperator {
  override readonly name = 'TokenFileError';
}

/** Why a token file cannot be read that no retry fixes (a busy system's EMFILE or EIO may pass). */
const UNREADABLE = new Set(['EACCES', 'EPERM', 'EISDIR', 'ENOTDIR', 'ELOOP']);

const HEX_KEY = /^[0-9a-fA-F]{64}$/;
/** 32 bytes in base64: 43 characters and one `=`, as `openssl rand -base64 32` prints them; the `=` may be left off. */
const BASE64_KEY = /^[A-Za-z0-9+/]{43}=?$/;

/** 32 bytes as 64 hex digits or canonical base64; anything else (a passphrase) is refused, and the error never quotes it. */
export function parseEncryptionKey(text: string): Buffer {
  const key = decodeKey(text.trim());
  if (key === undefined) throw new TokenFileError('TOKEN_ENCRYPTION_KEY must be 32 bytes, as 64 hex digits or base64 (generate one with `openssl rand -base64 32`)');
  return key;
}

function decodeKey(text: string): Buffer | undefined {
  if (HEX_KEY.test(text)) return Buffer.from(text, 'hex');
  if (!BASE64_KEY.test(text)) return undefined;
  // Node's decoder is lenient (it ignores the last character's spare bits): only text that re-encodes to itself is canonical.
  const key = Buffer.from(text, 'base64');
  return key.toString('base64') === text.padEnd(44, '=') ? key : undefined;
}

export class EncryptedTokenFile {
  constructor(readonly path: string, private readonly key: Buffer) {}

  /** The stored tokens, or undefined when nobody has logged in yet. */
  async load(): Promise<StoredTokens | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      const { code } = e as NodeJS.ErrnoException;
      if (code === 'ENOENT') return undefined;
      if (code !== undefined && UNREADABLE.has(code)) {
        throw new TokenFileError(`cannot read the token file ${this.path} (${code}): let this user read it, or point SCHWAB_TOKEN_FILE at the file \`hedge-ledger auth login\` wrote`, { cause: e });
      }
      throw e;
    }
    return this.decrypt(text);
  }

  async save(tokens: StoredTokens): Promise<void> {
    await this.writeTemp(this.encrypt(tokens), (temp) => rename(temp, this.path));
  }

  /**
   * Throws the TokenFileError a save would, without saving: `auth login` checks before it
   * spends Schwab's one-time code on tokens it then could not keep.
   */
  async assertWritable(): Promise<void> {
    try {
      await this.writeTemp('', async () => undefined);
    } catch (e) {
      throw new TokenFileError(`cannot write the token file ${this.path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): let this user write to its directory, or point SCHWAB_TOKEN_FILE elsewhere`, { cause: e });
    }
  }

  /** Writes `text` to a new temporary file next to the token file, hands it to `keep`, and never leaves it behind. */
  private async writeTemp(text: string, keep: (temp: string) => Promise<void>): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const temp = `${this.path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const file = await open(temp, 'wx', 0o600);
    try {
      try {
        await file.writeFile(text);
        await file.sync();
      } finally {
        await file.close();
      }
      await keep(temp);
    } finally {
      await rm(temp, { force: true });
    }
  }

  private encrypt(tokens: StoredTokens): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv).setAAD(AAD);
    const ciphertext = Buffer.concat([cipher.update(JSON.stringify(StoredTokens.encode(tokens)), 'utf8'), cipher.final()]);
    return JSON.stringify({ version: 1, iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), ciphertext: ciphertext.toString('base64') });
  }

  private decrypt(text: string): StoredTokens {
    const unreadable = (why: string) => new TokenFileError(`cannot read the token file ${this.path}: ${why}; log in again with \`hedge-ledger auth login\``);
    let plain: string;
    try {
      plain = this.open(text);
    } catch {
      throw unreadable('wrong TOKEN_ENCRYPTION_KEY, or not an intact token file');
    }
    const tokens = StoredTokens.decode(JSON.parse(plain));
    if (E.isLeft(tokens)) throw unreadable('unexpected contents');
    return tokens.right;
  }

  /** Throws on anything but an intact envelope sealed with our key. */
  private open(text: string): string {
    const envelope = Envelope.decode(JSON.parse(text));
    if (E.isLeft(envelope)) throw new TokenFileError('not a token file');
    const { iv, tag, ciphertext } = envelope.right;
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64'), { authTagLength: 16 }).setAAD(AAD);
    decipher.setAuthTag(Buffer.from(tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64')), decipher.final()]).toString('utf8');
  }
}
