// Internal to ssekit: where an SseClient's messages wait for its iteration,
// and how its reader waits for them to be taken, so that a client nobody
// reads holds one chunk's messages, not a stream's.

/** A queue with one reader that awaits items and one writer that awaits room. */
export class Inbox<T> {
  #items: T[] = [];
  #taker:
    | { resolve(result: IteratorResult<T>): void; reject(error: unknown): void }
    | undefined;
  #drained: (() => void) | undefined;
  #closed = false;
  /** What the reader gets once the items run out: an end, or an error once. */
  #error: unknown;

  /** Hands `item` to the waiting reader, or queues it. */
  put(item: T): void {
    if (this.#closed) return;
    if (this.#taker === undefined) {
      this.#items.push(item);
      return;
    }
    const taker = this.#taker;
    this.#taker = undefined;
    taker.resolve({ done: false, value: item });
  }

  /** Resolves once every queued item is taken, or the inbox is closed. */
  drained(): Promise<void> {
    if (this.#items.length === 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#drained = resolve);
  }

  /** The next item; once closed and empty, the end (or the error, once). */
  next(): Promise<IteratorResult<T>> {
    if (this.#items.length > 0) {
      const value = this.#items.shift()!;
      if (this.#items.length === 0) this.#wakeWriter();
      return Promise.resolve({ done: false, value });
    }
    if (this.#closed) return this.#end();
    return new Promise((resolve, reject) => {
      this.#taker = { resolve, reject };
    });
  }

  /**
   * Takes no more items. The reader gets those queued (unless `drop`), then
   * the end, or `error` if there is one.
   */
  close(error: unknown, drop: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#error = error;
    if (drop) this.#items = [];
    this.#wakeWriter();
    const taker = this.#taker;
    this.#taker = undefined;
    if (taker !== undefined) this.#end().then(taker.resolve, taker.reject);
  }

  #end(): Promise<IteratorResult<T>> {
    const error = this.#error;
    this.#error = undefined; // thrown once; after it, the iteration is done
    return error === undefined
      ? Promise.resolve({ done: true, value: undefined })
      : Promise.reject(error);
  }

  #wakeWriter(): void {
    const drained = this.#drained;
    this.#drained = undefined;
    drained?.();
  }
}
