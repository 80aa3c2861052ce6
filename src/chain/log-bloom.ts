/**
 * A block's `logsBloom` (Ethereum yellow paper, M3:2048): 2048 bits; every log sets, for its
 * address and each of its topics, three bits given by the keccak256 of those bytes: the low 11
 * bits of its byte pairs (0,1), (2,3) and (4,5), bit 0 the last bit of the 256 bytes. A bloom has
 * no false negatives: a block whose bloom lacks one of an item's bits has no log with that item.
 * Pure (no I/O): the scanner asks for a block's logs only when its bloom may hold one of ours.
 */
import { hexToBytes, keccak256, type Hex } from 'viem';
import { hexOfLength } from '../domain/codecs.ts';

const BLOOM_BYTES = 256;

/** The three bit indexes (0..2047) an item (an address, a topic) sets in a bloom. */
export type BloomBits = readonly [number, number, number];

export function bloomBits(item: Hex): BloomBits {
  const hash = keccak256(item, 'bytes');
  const bit = (i: number) => ((hash[i]! << 8) | hash[i + 1]!) & 0x7ff;
  return [bit(0), bit(2), bit(4)];
}

/** Whether the bloom (BLOOM_BYTES bytes) has all of an item's bits set. */
export const hasBits = (bloom: Uint8Array, bits: BloomBits): boolean => bits.every((bit) => (bloom[BLOOM_BYTES - 1 - (bit >> 3)]! & (1 << (bit & 7))) !== 0);

/** The bloom of these items: what a block whose logs mention exactly them has. */
export function bloomOf(items: readonly Hex[]): Uint8Array {
  const bloom = new Uint8Array(BLOOM_BYTES);
  for (const bit of items.flatMap(bloomBits)) {
    const at = BLOOM_BYTES - 1 - (bit >> 3);
    bloom[at] = bloom[at]! | (1 << (bit & 7));
  }
  return bloom;
}

/** A block header's `logsBloom`: BLOOM_BYTES bytes of hex. */
export const LogsBloom = hexOfLength('LogsBloom', BLOOM_BYTES);

/**
 * A filter's test on blooms: may a block hold a log of this address with one of these topic0s?
 * False is certain (the block has none); true may be a false positive (the block's other logs
 * set the same bits), which costs one eth_getLogs call.
 */
export class LogBloomFilter {
  private readonly address: BloomBits;
  private readonly topics: readonly BloomBits[];

  constructor(address: Hex, topic0s: readonly Hex[]) {
    this.address = bloomBits(address);
    this.topics = topic0s.map(bloomBits);
  }

  mayHold(bloom: Hex): boolean {
    const bytes = hexToBytes(bloom);
    return hasBits(bytes, this.address) && this.topics.some((topic) => hasBits(bytes, topic));
  }
}
