// Internal to ssekit; mod.ts exports none of it.

/** A promise with its resolvers, as `Promise.withResolvers()` gives. */
export interface Resolvers<T> {
  promise: Promise<T>;
  resolve: (value: T | PromiseLike<T>) => void;
  reject: (reason?: unknown) => void;
}

/**
 * `Promise.withResolvers()`, which Node 20 lacks (it came in Node 22): the
 * one place where a promise's resolvers are taken out by hand.
 */
export function withResolvers<T>(): Resolvers<T> {
  let resolve!: Resolvers<T>["resolve"];
  let reject!: Resolvers<T>["reject"];
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
