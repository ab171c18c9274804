import { assert } from '../core/assert.js';

/**
 * A seeded, deterministic pseudo-random number generator (xoshiro128**, seeded through
 * splitmix32). Every random choice in a simulation comes from one of these, so a run replays
 * exactly from its seed. It is not cryptographic and must never be used for secrets.
 *
 * Why xoshiro128**: it is small, fast with 32-bit integer arithmetic (Math.imul), passes the
 * usual statistical batteries, and its 128-bit state makes independent child streams (`fork`)
 * cheap. Why not Math.random: it cannot be seeded, so a failing run could not be replayed.
 */
export class Random {
  readonly #seed: number;
  #state0: number;
  #state1: number;
  #state2: number;
  #state3: number;

  /** `seed` is any safe integer; the same seed always yields the same sequence. */
  constructor(seed: number) {
    assert(Number.isSafeInteger(seed), 'Random: seed must be a safe integer');
    this.#seed = seed;
    // Both 32-bit halves of the seed feed the state, so seeds above 2^32 are distinct too.
    const low = seed >>> 0;
    const high = Math.floor(seed / 2 ** 32) >>> 0;
    let mix = (low ^ Math.imul(high, 0x9e3779b1)) >>> 0;
    mix = splitmix32(mix);
    this.#state0 = mix;
    mix = splitmix32(mix ^ high);
    this.#state1 = mix;
    mix = splitmix32(mix);
    this.#state2 = mix;
    mix = splitmix32(mix);
    this.#state3 = mix;
    // An all-zero state would output zeros forever; splitmix32 makes it practically impossible.
    const stateZero = (this.#state0 | this.#state1 | this.#state2 | this.#state3) === 0;
    assert(!stateZero, 'Random: all-zero state');
  }

  /** The seed this generator (or, for a fork, this child stream) was created from. */
  get seed(): number {
    return this.#seed;
  }

  /** The next raw 32-bit output, an integer in [0, 2^32). */
  uint32(): number {
    const result = Math.imul(rotateLeft(Math.imul(this.#state1, 5), 7), 9) >>> 0;
    const shifted = this.#state1 << 9;
    this.#state2 ^= this.#state0;
    this.#state3 ^= this.#state1;
    this.#state1 ^= this.#state2;
    this.#state0 ^= this.#state3;
    this.#state2 ^= shifted;
    this.#state3 = rotateLeft(this.#state3, 11);
    return result;
  }

  /** A number in [0, 1) with 32 bits of randomness. */
  next(): number {
    return this.uint32() / 2 ** 32;
  }

  /** An integer in [0, maxExclusive). */
  int(maxExclusive: number): number {
    assert(Number.isSafeInteger(maxExclusive), 'Random.int: bound must be an integer');
    assert(maxExclusive > 0, 'Random.int: bound must be positive');
    assert(maxExclusive <= 2 ** 32, 'Random.int: bound must be at most 2^32');
    return Math.floor(this.next() * maxExclusive);
  }

  /** An integer in [min, maxInclusive]. */
  range(min: number, maxInclusive: number): number {
    assert(Number.isSafeInteger(min), 'Random.range: min must be an integer');
    assert(Number.isSafeInteger(maxInclusive), 'Random.range: max must be an integer');
    assert(min <= maxInclusive, 'Random.range: min must not exceed max');
    return min + this.int(maxInclusive - min + 1);
  }

  /** True with the given probability (0 is never, 1 is always). */
  bool(probability: number): boolean {
    assert(probability >= 0, 'Random.bool: probability must be at least 0');
    assert(probability <= 1, 'Random.bool: probability must be at most 1');
    return this.next() < probability;
  }

  /** One element of a non-empty list, uniformly. */
  pick<T>(items: readonly T[]): T {
    assert(items.length > 0, 'Random.pick: empty list');
    return items[this.int(items.length)] as T;
  }

  /**
   * An independent child stream, seeded from this one. Components each take their own fork,
   * so adding a random choice in one component does not shift the choices of the others.
   */
  fork(): Random {
    // 21 + 32 bits make a safe integer seed, which the child reports through `seed`.
    const high = this.uint32() >>> 11;
    const low = this.uint32();
    return new Random(high * 2 ** 32 + low);
  }
}

function rotateLeft(value: number, bits: number): number {
  return (value << bits) | (value >>> (32 - bits));
}

/** One step of splitmix32: turns a poor seed (0, 1, 2, ...) into a well-mixed 32-bit word. */
function splitmix32(value: number): number {
  let mixed = (value + 0x9e3779b9) | 0;
  mixed = Math.imul(mixed ^ (mixed >>> 16), 0x85ebca6b);
  mixed = Math.imul(mixed ^ (mixed >>> 13), 0xc2b2ae35);
  return (mixed ^ (mixed >>> 16)) >>> 0;
}
