// Internal to ssekit: the bounded history that a channel resumes clients
// from. mod.ts exports none of it.

import type { Entry } from "./_scheme.ts";

/** How much a {@linkcode History} keeps. */
export interface HistoryLimits {
  /** At most this many entries. */
  size: number;
  /** At most this many UTF-16 code units of ids and wire text. */
  bytes: number;
}

/**
 * The most recent entries of a channel, oldest first, within its limits;
 * the oldest go first. Finds the entries after an id, so that a client that
 * has that id gets exactly what it missed.
 */
export class History<E extends Entry> {
  #entries: E[] = [];
  #units = 0;
  /** How many entries were ever kept: the number of the newest. */
  #count = 0;
  /** The number of the newest entry with each id. */
  #numbers = new Map<string, number>();
  #floor: string | undefined;
  #limits: HistoryLimits;
  #onForget: ((entry: E) => void) | undefined;

  /**
   * An empty history. `floor` is the id just before it (a client that has
   * it resumes from the first entry); `onForget` learns of each entry that
   * the limits push out.
   */
  constructor(
    limits: HistoryLimits,
    floor?: string,
    onForget?: (entry: E) => void,
  ) {
    this.#limits = limits;
    this.#floor = floor;
    this.#onForget = onForget;
  }

  /** The entries, oldest first. */
  get entries(): readonly E[] {
    return this.#entries;
  }

  /** Keeps `entry` as the newest, forgetting the oldest past the limits. */
  push(entry: E): void {
    this.#entries.push(entry);
    this.#units += entry.body.length + entry.id.length;
    this.#numbers.set(entry.id, ++this.#count);
    const { size, bytes } = this.#limits;
    while (this.#entries.length > size || this.#units > bytes) {
      const old = this.#entries.shift()!;
      this.#units -= old.body.length + old.id.length;
      this.#floor = old.id;
      // An id that came again later stays findable at its later entry.
      const number = this.#count - this.#entries.length;
      if (this.#numbers.get(old.id) === number) this.#numbers.delete(old.id);
      this.#onForget?.(old);
    }
  }

  /**
   * The entries that follow the one with the id `id`, oldest first; all of
   * them if `id` is the one just before the history; undefined if the
   * history cannot say what follows `id`.
   */
  after(id: string): readonly E[] | undefined {
    const number = this.#numbers.get(id);
    if (number !== undefined) {
      return this.#entries.slice(number - this.#count + this.#entries.length);
    }
    return id === this.#floor ? this.#entries : undefined;
  }

  /**
   * Forgets every entry, and that anything came before: after a gap, no id
   * from before it resumes.
   */
  clear(): void {
    this.#entries = [];
    this.#units = 0;
    this.#numbers.clear();
    this.#floor = undefined;
  }
}
