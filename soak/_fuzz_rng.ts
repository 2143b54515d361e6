// A seeded PRNG for the fuzz scenarios, so that a failure can be replayed:
// every scenario prints its seed, and `SOAK_SEED=<seed> deno task soak
// --only=<name>` runs the same inputs again (run.ts has no `--seed` flag).

/** The seed from `SOAK_SEED` if set (an integer), else a random one. */
export function soakSeed(): number {
  const text = Deno.env.get("SOAK_SEED");
  if (text !== undefined && text !== "") {
    const seed = Number(text);
    if (!Number.isSafeInteger(seed)) {
      throw new TypeError(
        `SOAK_SEED must be an integer, got ${JSON.stringify(text)}`,
      );
    }
    return seed >>> 0;
  }
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/** A small, fast, seeded generator (sfc32) with the helpers fuzzers need. */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(readonly seed: number) {
    this.#a = 0x9e3779b9;
    this.#b = 0x243f6a88;
    this.#c = 0xb7e15162;
    this.#d = seed >>> 0;
    for (let i = 0; i < 16; i++) this.next(); // mix the seed in
  }

  /** A uniform 32-bit unsigned integer. */
  next(): number {
    const a = this.#a, b = this.#b, c = this.#c, d = this.#d;
    const t = (((a + b) | 0) + d) | 0;
    this.#d = (d + 1) | 0;
    this.#a = b ^ (b >>> 9);
    this.#b = (c + (c << 3)) | 0;
    const r = (c << 21) | (c >>> 11);
    this.#c = (r + t) | 0;
    return t >>> 0;
  }

  /** A float in [0, 1). */
  float(): number {
    return this.next() / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** An integer in [min, max]. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** One element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** One of `weighted`'s keys, with probability proportional to its value. */
  weighted<K extends string>(weighted: Record<K, number>): K {
    const entries = Object.entries(weighted) as [K, number][];
    let total = 0;
    for (const [, w] of entries) total += w;
    let x = this.float() * total;
    for (const [key, w] of entries) {
      x -= w;
      if (x < 0) return key;
    }
    return entries[entries.length - 1][0];
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.next() & 0xff;
    return out;
  }
}
