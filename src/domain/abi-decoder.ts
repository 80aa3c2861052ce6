/**
 * Reads ABI-encoded event data (`0x` hex) for hand-written decoders of fixed layouts.
 *
 * It makes the checks of viem's `decodeEventLog` (viem 2.x `decodeAbiParameters` and its
 * `Cursor`), so a layout read through it in viem's order fails exactly where viem fails:
 * - a read past the end of the data, with viem's message;
 * - an offset or a length above 2^53 - 1;
 * - after a dynamic value, viem seeks back to the slot after its base, which must lie in the data;
 * - more than 8192 reads of already read positions (offsets aliasing one tail);
 * - `bytes` values adding up to more than 32 times the data size.
 * Like viem it ignores the 12 high bytes of an address word, the padding after `bytes` and
 * anything after the last value read. It is stricter than viem in two corners:
 * - data must be `0x` then whole bytes of hex (viem drops any first two characters and
 *   left-pads an odd number of digits with a 0 nibble);
 * - a uint8 above 255 is refused (viem returns any safe integer as the uint8).
 * Addresses come out lowercase, not checksummed: that costs a keccak per address.
 */
import type { Hex } from 'viem';

/** Why data does not decode: the `detail` of a `malformed_log`. */
export class AbiDecodeError extends Error {
  override readonly name = 'AbiDecodeError';
}

/** Raised in the fast pass when there are enough reads that viem's re-read limit could apply. */
class RereadCountNeeded extends Error {}

/** viem's Cursor `recursiveReadLimit`: reads of an already read position allowed. */
const MAX_REREADS = 8_192;

/** Eight ASCII '0's read as one float64: hex digits (0x30..0x66) never make a NaN or a signed zero, so == compares bytes. */
const EIGHT_ZEROS = new DataView(new TextEncoder().encode('00000000').buffer).getFloat64(0);

/** 2^53 - 1 >> 32: the largest high half of a safe integer. */
const MAX_SAFE_HIGH = 0x1f_ffff;

/** Value of each pair of lowercase hex digits, by their ASCII codes as a big-endian uint16. */
const BYTE = new Uint8Array(0x6667);
for (let hi = 0; hi < 16; hi++) {
  for (let lo = 0; lo < 16; lo++) BYTE[('0123456789abcdef'.charCodeAt(hi) << 8) | '0123456789abcdef'.charCodeAt(lo)] = (hi << 4) | lo;
}

// The data's ASCII codes for numeric reads, in a buffer reused by every decode: decoding is
// synchronous and nothing it returns refers to the buffer. Longer data gets its own.
const SCRATCH = new Uint8Array(16_384);
const SCRATCH_VIEW = new DataView(SCRATCH.buffer);
const encoder = new TextEncoder();
const latin1 = new TextDecoder('latin1');

/** An address read before: its 40 digits' ASCII codes as five float64s (compared as EIGHT_ZEROS is), and its string. */
interface KnownAddress {
  readonly digits: readonly number[];
  readonly address: Hex;
}

/** Slots of the address cache, by an address's low bits: a power of two. */
const ADDRESS_SLOTS = 1024;
const knownAddresses: (KnownAddress | undefined)[] = new Array<KnownAddress | undefined>(ADDRESS_SLOTS).fill(undefined);

/**
 * Decodes `data` by `layout`, which reads its fields through the AbiWords in viem's order
 * (components in order; an offset before its tail; a length before its elements).
 * `data` must be `0x` then whole bytes of lowercase hex, as the HexData codec leaves every log's
 * data; anything else decodes to nonsense. Throws AbiDecodeError.
 */
export function decodeAbi<T>(hex: string, layout: (words: AbiWords) => T): T {
  const size = (hex.length - 2) / 2;
  if (size < 32) throw tooSmall(size);
  const ascii = hex.length <= SCRATCH.length ? SCRATCH : new Uint8Array(hex.length);
  const view = ascii === SCRATCH ? SCRATCH_VIEW : new DataView(ascii.buffer);
  encoder.encodeInto(hex, ascii);
  try {
    return layout(new AbiWords(hex, size, view, null));
  } catch (error) {
    if (!(error instanceof RereadCountNeeded)) throw error;
    return layout(new AbiWords(hex, size, view, new Set()));
  }
}

/** viem's message for any read past the end, which it reports against the whole data. */
const tooSmall = (size: number): AbiDecodeError => new AbiDecodeError(`Data size of ${size} bytes is too small for non-indexed event parameters.`);

/**
 * The 32-byte words of the data, by byte position. Positions of a tuple's components and of
 * the targets of its offsets count from the tuple's base, as in the ABI spec.
 */
export class AbiWords {
  private reads = 0;
  private rereads = 0;
  /** Bytes that `bytes` values may still add up to (viem: 32 times the data size). */
  private budget: number;

  /** `seen` null: count reads only, the fast pass; a set: track each position read, like viem. */
  constructor(
    private readonly hex: string,
    private readonly size: number,
    private readonly view: DataView,
    private readonly seen: Set<number> | null,
  ) {
    this.budget = 32 * size;
  }

  address(p: number): Hex {
    const c = this.read(p, 32);
    return this.knownAddress(c + 24);
  }

  bytes32(p: number): Hex {
    const c = this.read(p, 32);
    return `0x${this.hex.slice(c, c + 64)}`;
  }

  uint256(p: number): bigint {
    const c = this.read(p, 32);
    // Most amounts, indexes and vault ids fit in 32 or 64 bits: no hex text to parse.
    if (this.zeros(c, 56)) return BigInt(this.hex8(c + 56));
    if (this.zeros(c, 48)) return (BigInt(this.hex8(c + 48)) << 32n) | BigInt(this.hex8(c + 56));
    return BigInt(`0x${this.hex.slice(c, c + 64)}`);
  }

  uint8(p: number): number {
    const c = this.read(p, 32);
    const value = this.hex8(c + 56);
    if (!this.zeros(c, 56) || value > 0xff) throw new AbiDecodeError(`uint8 at byte ${p} is above 255`);
    return value;
  }

  /** Where the dynamic value whose offset is at `slot` starts; the offset counts from `base`. */
  tail(slot: number, base: number): number {
    const start = base + this.uint53(slot);
    if (base + 32 >= this.size) throw tooSmall(this.size);
    return start;
  }

  /** Element count of the array whose tail is at `start`; all `stride`-byte elements must lie in the data. */
  length(start: number, stride: number): number {
    const count = this.uint53(start);
    if (start + 32 + count * stride > this.size) throw tooSmall(this.size);
    return count;
  }

  /** The `bytes` value whose offset is at `slot`, counting from `base`. */
  bytes(slot: number, base: number): Hex {
    const start = this.tail(slot, base);
    const length = this.uint53(start);
    if (length === 0) return '0x';
    const c = this.read(start + 32, length);
    this.budget -= length;
    if (this.budget < 0) throw new AbiDecodeError(`bytes values add up to more than ${32 * this.size} bytes: offsets alias one tail`);
    return `0x${this.hex.slice(c, c + 2 * length)}`;
  }

  /** An offset or a length: viem reads them as numbers and refuses any above 2^53 - 1. */
  private uint53(p: number): number {
    const c = this.read(p, 32);
    if (this.zeros(c, 56)) return this.hex8(c + 56); // the usual case, below 2^32
    const high = this.hex8(c + 48);
    if (!this.zeros(c, 48) || high > MAX_SAFE_HIGH) throw new AbiDecodeError(`offset or length at byte ${p} is above 2^53 - 1`);
    return high * 2 ** 32 + this.hex8(c + 56);
  }

  /** Index in `hex` of the `n` bytes at byte `p`, once viem would let them be read. */
  private read(p: number, n: number): number {
    this.touch(p);
    if (p + n > this.size) throw tooSmall(this.size);
    return 2 + 2 * p;
  }

  /** viem fails a read once MAX_REREADS earlier reads were of positions read before them. */
  private touch(p: number): void {
    if (this.seen === null) {
      // The first read is never a re-read, so MAX_REREADS + 1 reads cannot fail the next one.
      if (++this.reads > MAX_REREADS + 1) throw new RereadCountNeeded();
      return;
    }
    if (this.rereads >= MAX_REREADS) throw new AbiDecodeError(`more than ${MAX_REREADS} reads of already read bytes: offsets alias one tail`);
    if (this.seen.has(p)) this.rereads++;
    else this.seen.add(p);
  }

  /**
   * The address whose 40 digits start at index `c`. A ledger's logs name the same owners, tokens
   * and contracts again and again, so the string made the first time is handed out again while its
   * slot (by the address's low bits) still holds it. That spares two new strings per read, and the
   * folds' lookups by address (tokens, owners) then hash a string V8 has hashed before instead of
   * flattening and hashing a new one. The digits are compared in place, as five float64s.
   */
  private knownAddress(c: number): Hex {
    const slot = this.hex8(c + 32) & (ADDRESS_SLOTS - 1);
    const known = knownAddresses[slot];
    if (known !== undefined && this.sameDigits(c, known.digits)) return known.address;
    return (knownAddresses[slot] = this.newAddress(c)).address;
  }

  /** The address whose 40 digits start at index `c`, for the cache. */
  private newAddress(c: number): KnownAddress {
    const v = this.view;
    // Copied out of the ASCII codes, not sliced from `hex`: a slice would keep the whole log's data alive in the cache.
    const address: Hex = `0x${latin1.decode(new Uint8Array(v.buffer, v.byteOffset + c, 40))}`;
    return { digits: [v.getFloat64(c), v.getFloat64(c + 8), v.getFloat64(c + 16), v.getFloat64(c + 24), v.getFloat64(c + 32)], address };
  }

  /** Whether the 40 hex digits from index `c` are those of `digits`. */
  private sameDigits(c: number, digits: readonly number[]): boolean {
    const v = this.view;
    return v.getFloat64(c) === digits[0] && v.getFloat64(c + 8) === digits[1] && v.getFloat64(c + 16) === digits[2] && v.getFloat64(c + 24) === digits[3] && v.getFloat64(c + 32) === digits[4];
  }

  /** Whether the `n` (a multiple of 8) hex digits from index `c` are all '0'. */
  private zeros(c: number, n: number): boolean {
    for (let i = c; i < c + n; i += 8) if (this.view.getFloat64(i) !== EIGHT_ZEROS) return false;
    return true;
  }

  /** The 32-bit value of the 8 hex digits from index `c`. */
  private hex8(c: number): number {
    const v = this.view;
    return ((BYTE[v.getUint16(c)]! << 24) | (BYTE[v.getUint16(c + 2)]! << 16) | (BYTE[v.getUint16(c + 4)]! << 8) | BYTE[v.getUint16(c + 6)]!) >>> 0;
  }
}
