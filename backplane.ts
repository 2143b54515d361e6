/**
 * What a backplane is: the contracts between an {@linkcode SseChannel} and
 * the instances it shares events with. An {@linkcode SseBackplane} carries
 * each sender's events in that sender's order; an
 * {@linkcode SseOrderedBackplane} puts every event into one order (as
 * `RedisBackplane`, in `./redis.ts`, does on a Redis stream). And
 * {@linkcode BroadcastChannelBackplane}, one on the web-standard
 * `BroadcastChannel`.
 *
 * A backplane author reads this file only: what the channel expects of each
 * method, and what it does in return, is in the JSDoc of each interface.
 *
 * @module
 */

/**
 * An event on its way between the instances that share a channel: encoded
 * once by the instance that sent it, without an id (each instance adds its
 * own, see {@linkcode SseChannel}).
 */
export interface SseBackplaneMessage {
  /** The sending instance. */
  origin: string;
  /**
   * The sender's sequence number: 1, 2, 3, … with no gap; `0` (with an
   * empty `body`) announces a sender that has just joined.
   */
  seq: number;
  /** The event's wire text without its `id:` line, as `encodeEvent` gives. */
  body: string;
  /** The topic it was sent to, if any. */
  topic?: string;
}

/**
 * Carries events between the instances that share a channel. `publish` must
 * deliver each message to every other instance, in the order each sender
 * published them; `subscribe` receives the others' messages (not one's own).
 *
 * @example A backplane within one process, for tests
 * ```ts
 * import type { SseBackplane, SseBackplaneMessage } from "./backplane.ts";
 *
 * class LocalBackplane implements SseBackplane {
 *   static #all = new Set<LocalBackplane>();
 *   #listener?: (message: SseBackplaneMessage) => void;
 *   constructor() {
 *     LocalBackplane.#all.add(this);
 *   }
 *   publish(message: SseBackplaneMessage): void {
 *     for (const other of LocalBackplane.#all) {
 *       if (other !== this) other.#listener?.(message);
 *     }
 *   }
 *   subscribe(listener: (message: SseBackplaneMessage) => void): void {
 *     this.#listener = listener;
 *   }
 *   close(): void {
 *     LocalBackplane.#all.delete(this);
 *   }
 * }
 * ```
 */
export interface SseBackplane {
  /** Sends a message to every other instance. */
  publish(message: SseBackplaneMessage): void;
  /** Registers the one listener for the other instances' messages. */
  subscribe(listener: (message: SseBackplaneMessage) => void): void;
  /** Stops publishing and receiving; called by `SseChannel.close()`. */
  close(): void;
}

/**
 * A backplane on the web-standard `BroadcastChannel`: it spans the workers
 * of one Deno process, and isolates on Deno Deploy. Every channel that uses
 * the same `name` shares events.
 *
 * @example Two channels that share events (in two workers, usually)
 * ```ts
 * import { BroadcastChannelBackplane } from "./backplane.ts";
 * import { SseChannel } from "./channel.ts";
 *
 * const channel = new SseChannel({
 *   backplane: new BroadcastChannelBackplane("news"),
 * });
 * channel.close();
 * ```
 */
export class BroadcastChannelBackplane implements SseBackplane {
  #channel: BroadcastChannel;

  /** Joins the broadcast channel called `name`. */
  constructor(name = "ssekit") {
    this.#channel = new BroadcastChannel(name);
  }

  /** Posts `message` to the other members of the broadcast channel. */
  publish(message: SseBackplaneMessage): void {
    this.#channel.postMessage(message);
  }

  /** Receives what the other members post. */
  subscribe(listener: (message: SseBackplaneMessage) => void): void {
    this.#channel.onmessage = (event: MessageEvent<SseBackplaneMessage>) =>
      listener(event.data);
  }

  /** Leaves the broadcast channel. */
  close(): void {
    this.#channel.close();
  }
}

/** Options for {@linkcode SseOrderedBackplane.publish}. */
export interface SseOrderedPublishOptions {
  /** The topic the event is sent to, if any. */
  topic?: string;
  /** Withdraws the event if it has not been sent yet (see `publish`). */
  signal?: AbortSignal;
}

/** An event in the order that an {@linkcode SseOrderedBackplane} keeps. */
export interface SseOrderedEntry {
  /** Its place in the order, which every instance sends as its event id. */
  position: string;
  /** The event's wire text without its `id:` line, as `encodeEvent` gives. */
  body: string;
  /** The topic it was sent to, if any. */
  topic?: string;
}

/**
 * What an {@linkcode SseOrderedBackplane} tells its channel, in this order:
 * `start` once, then `entry` for each later entry and `lost` whenever some
 * may be missing.
 */
export interface SseOrderedReceiver {
  /**
   * The recent past: every entry that follows the position `after`, oldest
   * first (up to the `history` that `subscribe` asked for; `after` is the
   * start of the order if there are fewer). Later entries follow the last.
   */
  start(history: SseOrderedEntry[], after: string): void;
  /** The next entry of the order: each once, in order. */
  entry(entry: SseOrderedEntry): void;
  /**
   * Entries between the last one given and the next may be missing (a
   * restart or a trim lost them); the channel sends its clients `event:
   * reset`.
   */
  lost(reason: string): void;
}

/**
 * Puts the events of every instance that shares a channel into one order:
 * every instance, the sender included, delivers each event in that order,
 * under the same id. So all clients see the same sequence, and an id means
 * the same place on every instance. {@linkcode RedisBackplane} (in
 * `./redis.ts`) is one, on a Redis stream.
 *
 * A channel on an ordered backplane delivers an event once the backplane
 * has ordered it, not when it is sent; use `await channel.publish(event)`,
 * which resolves with the event's id.
 *
 * @example An order in memory, for tests: positions "1", "2", …
 * ```ts
 * import type {
 *   SseOrderedBackplane,
 *   SseOrderedEntry,
 *   SseOrderedPublishOptions,
 *   SseOrderedReceiver,
 * } from "./backplane.ts";
 *
 * class MemoryOrder implements SseOrderedBackplane {
 *   readonly ordered = true;
 *   static #log: SseOrderedEntry[] = [];
 *   static #members = new Set<SseOrderedReceiver>();
 *   #receiver?: SseOrderedReceiver;
 *   publish(body: string, options?: SseOrderedPublishOptions): Promise<string> {
 *     const position = String(MemoryOrder.#log.length + 1);
 *     const entry = { position, body, topic: options?.topic };
 *     MemoryOrder.#log.push(entry);
 *     for (const member of MemoryOrder.#members) member.entry(entry);
 *     return Promise.resolve(entry.position);
 *   }
 *   subscribe(receiver: SseOrderedReceiver, history: number): void {
 *     const log = MemoryOrder.#log;
 *     const past = log.slice(Math.max(0, log.length - history));
 *     receiver.start(past, String(log.length - past.length));
 *     MemoryOrder.#members.add(this.#receiver = receiver);
 *   }
 *   compare(a: string, b: string): number {
 *     return /^\d+$/.test(a) && /^\d+$/.test(b) ? Number(a) - Number(b) : NaN;
 *   }
 *   close(): void {
 *     if (this.#receiver) MemoryOrder.#members.delete(this.#receiver);
 *   }
 * }
 * ```
 */
export interface SseOrderedBackplane {
  /** Marks the backplane as ordered. */
  readonly ordered: true;
  /**
   * Appends an event to the order; resolves with its position once it has
   * one, or rejects if it never will (the backplane closed, or gave up).
   * When `options.signal` aborts while the event still waits to be sent, the
   * backplane withdraws it and rejects with the signal's reason; once it may
   * have been appended, the promise settles with what happened.
   */
  publish(body: string, options?: SseOrderedPublishOptions): Promise<string>;
  /**
   * Starts telling `receiver` the order: `start` with up to `history` past
   * entries, then every later entry. Whatever `publish` is given from now on
   * comes after the entries given to `start`.
   */
  subscribe(receiver: SseOrderedReceiver, history: number): void;
  /**
   * Compares two positions: negative if `a` comes first, positive if `b`
   * does, `0` if they are the same, `NaN` if either is not a position.
   */
  compare(a: string, b: string): number;
  /** Stops publishing and receiving; called by `SseChannel.close()`. */
  close(): void;
}
