/**
 * {@linkcode SseChannel}: one event to every connected client, with resume
 * from a bounded history, slow clients dropped before they cost memory, and a
 * backplane to share the channel between instances: an
 * {@linkcode SseOrderedBackplane} (one order for all, such as a Redis stream)
 * or an {@linkcode SseBackplane} (each sender's order only).
 *
 * @module
 */

import {
  encodeEvent,
  lastEventId,
  SseClosedError,
  type SseEvent,
  SseWriter,
  writerInternals,
} from "./sse.ts";
import { describe, MAX_TIMER_DELAY } from "./_describe.ts";

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
 * import type { SseBackplane, SseBackplaneMessage } from "./channel.ts";
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
 * import { BroadcastChannelBackplane, SseChannel } from "./channel.ts";
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
 * } from "./channel.ts";
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

/** Options for {@linkcode SseChannel}. */
export interface SseChannelOptions {
  /**
   * How many past events the channel keeps so that a client can resume.
   *
   * @default {1000}
   */
  historySize?: number;
  /**
   * How much wire text the history may hold, in UTF-16 code units (bytes,
   * for ASCII). The oldest events go first.
   *
   * @default {1048576}
   */
  historyBytes?: number;
  /**
   * How much a client may fall behind, in queued UTF-16 code units, before it
   * is disconnected. It then reconnects and resumes from the history, so this
   * must be at least `historyBytes`.
   *
   * @default {1048576}
   */
  maxBufferedAmount?: number;
  /**
   * Milliseconds of silence before a client gets a keep-alive comment; `0`
   * turns it off. One timer serves all clients.
   *
   * @default {15000}
   */
  keepAlive?: number;
  /** Extra headers for every client's response (as for `SseWriter`). */
  headers?: HeadersInit;
  /**
   * With a backplane: how long a client whose last event id is ahead of this
   * instance (it comes from one further along) waits for this instance to
   * catch up, in milliseconds, before it gets `event: reset`. A client
   * further ahead than `historySize` events is reset at once.
   *
   * @default {5000}
   */
  catchUpTimeout?: number;
  /**
   * Shares the channel with other instances, so that a client can resume on
   * any of them. With an {@linkcode SseOrderedBackplane} (such as
   * `RedisBackplane`), every client sees every event in one order and ids
   * are the backplane's positions; send with `publish()`. With an
   * {@linkcode SseBackplane}, each sender's events keep their order and ids
   * name what was seen from each sender.
   */
  backplane?: SseBackplane | SseOrderedBackplane;
}

/** Options for {@linkcode SseChannel.connect}. */
export interface SseConnectOptions {
  /**
   * The topics this client receives, besides the events sent without a
   * topic. All events when absent.
   */
  topics?: string[];
  /**
   * Disconnects the client when aborted. Not needed on Deno, Bun and
   * workers, whose servers cancel the response body when a client leaves;
   * for a server adapter that does not, pass `request.signal`.
   */
  signal?: AbortSignal;
  /**
   * Called once when this client's stream ends, for whatever reason, after
   * the client has left `size`. For presence: "3 people here".
   */
  onClose?: () => void;
}

/** Options for {@linkcode SseChannel.send}. */
export interface SseSendOptions {
  /** Delivers the event only to clients connected with this topic. */
  topic?: string;
}

/** Options for {@linkcode SseChannel.publish}. */
export interface SsePublishOptions extends SseSendOptions {
  /**
   * On an ordered backplane, withdraws the event if it has not been sent to
   * the backplane when the signal aborts (see
   * {@linkcode SseOrderedBackplane.publish}). An already aborted signal
   * sends nothing, on every channel.
   */
  signal?: AbortSignal;
}

interface Client {
  writer: SseWriter;
  topics: Set<string> | undefined;
  /**
   * Set while the client has seen more of some origins than this instance
   * (it came from an instance further ahead): per origin, the last seq it
   * has. Those events are not sent to it again, and its ids include them.
   */
  ahead?: Map<string, number>;
  /**
   * Ordered: set while the client has every entry up to this position, which
   * this instance has not delivered yet (it came from an instance further
   * ahead). Entries up to it are not sent to it again.
   */
  after?: string;
  /**
   * Ordered: set while the client waits for the backplane to start (it
   * connected before); what it asked to resume after, if anything.
   */
  early?: { last: string | undefined };
  /** Set while `ahead` or `after` is: resets the client if it stays so. */
  catchUp?: ReturnType<typeof setTimeout>;
  /** Ordered: how many entries went by while the client was `after`. */
  skipped?: number;
}

interface Entry {
  /** The sender; `""` on an ordered backplane, where it does not matter. */
  origin: string;
  /**
   * The sender's number for it; with no backplane or an ordered one, this
   * instance's own count, 1, 2, 3, … in history order.
   */
  seq: number;
  /** The id clients get with it. */
  id: string;
  topic: string | undefined;
  /** The wire text without the `id:` line. */
  body: string;
}

type Vector = Map<string, number>;

const ENCODER = new TextEncoder();
/** A batch of events is handed to the clients once it holds this much text. */
const BATCH_UNITS = 65_536;
const DEFAULT_CATCH_UP_TIMEOUT = 5000;
/** An id of a channel without a backplane: its epoch, a dash, a count. */
const LOCAL_ID = /^([0-9a-z]{6})-(0|[1-9]\d*)$/;

/**
 * A new epoch: six random base-36 characters, drawn once per channel, so
 * that an id from another run of a channel (before a restart) or another
 * instance never names an event of this one.
 */
function newEpoch(): string {
  const [n] = crypto.getRandomValues(new Uint32Array(1));
  return (n % 36 ** 6).toString(36).padStart(6, "0");
}

/**
 * An id naming, for every origin, the last seq seen: `"a1b2:12,c3d4:7"`.
 * An origin missing means 0, so zeros are left out but for `self`'s.
 */
function formatVector(vector: Vector, self: string): string {
  return [...vector].filter(([origin, seq]) => seq > 0 || origin === self)
    .sort(([a], [b]) => a < b ? -1 : 1)
    .map(([origin, seq]) => `${origin}:${seq}`).join(",");
}

function parseVector(id: string): Vector | undefined {
  const vector: Vector = new Map();
  for (const part of id.split(",")) {
    const [origin, seq, extra] = part.split(":");
    const number = Number(seq);
    if (!origin || extra !== undefined || !Number.isSafeInteger(number)) {
      return undefined;
    }
    vector.set(origin, number);
  }
  return vector;
}

/** Whether `client` takes an event sent to `topic` (or to everyone). */
function takes(client: Client, topic: string | undefined): boolean {
  return topic === undefined || !client.topics || client.topics.has(topic);
}

/** Whether a backplane brought a message of the right shape. */
function isMessage(message: unknown): message is SseBackplaneMessage {
  const { origin, seq, body, topic } = (message ?? {}) as SseBackplaneMessage;
  return typeof origin === "string" && /^[^:,]+$/.test(origin) &&
    Number.isSafeInteger(seq) && seq >= 0 && typeof body === "string" &&
    (topic === undefined || typeof topic === "string");
}

function isOrdered(
  backplane: SseBackplane | SseOrderedBackplane,
): backplane is SseOrderedBackplane {
  return (backplane as SseOrderedBackplane).ordered === true;
}

function checkLimit(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw new RangeError(
      `Cannot create SseChannel: \`${name}\` must be a non-negative integer, got ${
        typeof value === "string" ? JSON.stringify(value) : String(value)
      }`,
    );
  }
  return value as number;
}

function checkTopic(where: string, topic: unknown): void {
  if (typeof topic !== "string") {
    throw new TypeError(
      `${where}: a topic must be a string, got ${
        topic === null || typeof topic !== "object"
          ? String(topic)
          : "an object"
      }`,
    );
  }
}

/**
 * Sends each event to every connected client: the event is validated and
 * encoded once, and the same bytes go to every client.
 *
 * **Ids and resume.** An event gets the next id of the channel's sequence
 * unless it has one: the channel's epoch, six base-36 characters drawn when
 * it is created, a dash, and a count (`"k2f9x1-1"`, `"k2f9x1-2"`, …). The
 * epoch makes an id from before a restart, or from another instance, unknown
 * here rather than the name of some other event. A new client first gets an
 * `id:` line with the channel's current position (`"k2f9x1-0"` before any
 * event), so even a client that leaves before any event arrives can resume. A client that
 * reconnects with `Last-Event-ID` (or a `lastEventId` query parameter) first
 * gets every event after that id, in order, then the live ones. If the id is
 * no longer in the history, from another epoch, or unknown, the client gets
 * `event: reset` (data `{"reason": …}`, and the current position as its id)
 * and should reload its state: a gap is never silent.
 *
 * **Slow clients.** `send()` never waits. A client whose queue passes
 * `maxBufferedAmount` is disconnected (counted in `dropped`); it reconnects
 * and resumes from the history. Others are not delayed.
 *
 * **Several instances, in one order.** With an
 * {@linkcode SseOrderedBackplane} (such as `RedisBackplane`), `publish()`
 * hands the event to the backplane, and every instance, the sender included,
 * delivers it once the backplane has ordered it: every client sees the same
 * sequence, and an event's id is its position in that order, the same on
 * every instance. A client resumes on any instance: from its history (which
 * starts with the backplane's recent past), or, on an instance that has not
 * yet caught up with the client's id, from the first event after it, once it
 * has caught up, within `catchUpTimeout` ms and `historySize` events (past
 * either, the client gets a reset). When the backplane reports lost entries,
 * every client gets a reset and the history forgets what came before, so that
 * no later resume is replayed across the gap. `send()` throws there, since the id is not known until the event is
 * ordered.
 *
 * **Several instances, each sender in order.** With an
 * {@linkcode SseBackplane} (such as `BroadcastChannelBackplane`), every
 * instance delivers its own events at once and the others' as they arrive.
 * Each sender numbers its own events, and an id names the last number seen
 * from each sender (`"k2f9:12,x8aa:7"`). Concurrent events may reach two
 * instances in different orders, but such an id means the same set of events
 * on both, so a client resumes on any instance without gap or duplicate. An
 * instance announces itself when it starts; a client whose id names one that
 * this instance never heard from gets a reset, since what followed is
 * unknown here.
 *
 * With a backplane, events cannot carry their own ids.
 *
 * @example A chat room: clients connect, messages go to everyone
 * ```ts
 * import { SseChannel } from "./channel.ts";
 *
 * const room = new SseChannel();
 * const response = room.connect(new Request("http://localhost/events"));
 * room.size; // 1
 * room.send({ event: "message", data: { text: "hi" } }); // "k2f9x1-1"
 * room.close();
 * await response.text();
 * // 'id: k2f9x1-0\n\nid: k2f9x1-1\nevent: message\ndata: {"text":"hi"}\n\n'
 * ```
 */
export class SseChannel {
  /**
   * Resolves once the channel knows its position and can resume clients:
   * at once, except on an ordered backplane, which must first read the
   * recent past (clients that connect before then wait for it). A client
   * that waited without a `Last-Event-ID` starts at the position the
   * backplane gives then: what was ordered while it waited is not sent to
   * it. Resolves on `close()` too; it never rejects.
   */
  readonly ready: Promise<void>;
  #clients = new Set<Client>();
  #history: Entry[] = [];
  #historyUnits = 0;
  /** History position (seq) of each id, without a backplane or when ordered. */
  #positions = new Map<string, number>();
  /** The last seq seen from each origin: this instance's position. */
  #clock: Vector = new Map();
  /** Unordered: per origin, the highest seq that the history no longer holds. */
  #forgotten: Vector = new Map();
  /**
   * Without a backplane or when ordered: the id just before the history, so
   * that a client that has it resumes from the first entry; undefined after
   * a gap, where no id before the history can be resumed.
   */
  #floor: string | undefined;
  /** Ordered: the position after which the backplane last lost entries. */
  #gapAt: string | undefined;
  /** Events recorded but not yet handed to the clients (see `#flush`). */
  #batch: Entry[] = [];
  #batchUnits = 0;
  /** Ordered: the position before the batch's first entry. */
  #batchAfter = "";
  #origin = crypto.randomUUID().slice(0, 8);
  #epoch = newEpoch();
  #seq = 0;
  #dropped = 0;
  #closed = false;
  #historySize: number;
  #historyBytes: number;
  #maxBufferedAmount: number;
  #keepAlive: number | undefined;
  #catchUpTimeout: number;
  #headers: HeadersInit | undefined;
  #backplane: SseBackplane | undefined;
  #ordered: SseOrderedBackplane | undefined;
  /** Ordered: the position of the last entry; undefined until started. */
  #orderedAt: string | undefined;
  #resolveReady!: () => void;

  /** Creates a channel; see {@linkcode SseChannelOptions} for defaults. */
  constructor(options: SseChannelOptions = {}) {
    this.#historySize = checkLimit("historySize", options.historySize, 1000);
    this.#historyBytes = checkLimit(
      "historyBytes",
      options.historyBytes,
      1_048_576,
    );
    this.#maxBufferedAmount = checkLimit(
      "maxBufferedAmount",
      options.maxBufferedAmount,
      1_048_576,
    );
    if (this.#maxBufferedAmount < this.#historyBytes) {
      throw new RangeError(
        `Cannot create SseChannel: \`maxBufferedAmount\` (${this.#maxBufferedAmount}) must be at least \`historyBytes\` (${this.#historyBytes}), or a resuming client could never catch up`,
      );
    }
    const { backplane } = options;
    if (
      backplane !== undefined &&
      (typeof backplane?.publish !== "function" ||
        typeof backplane.subscribe !== "function" ||
        typeof backplane.close !== "function")
    ) {
      throw new TypeError(
        "Cannot create SseChannel: `backplane` must have publish, subscribe and close methods",
      );
    }
    const { catchUpTimeout = DEFAULT_CATCH_UP_TIMEOUT } = options;
    if (
      !(Number.isSafeInteger(catchUpTimeout) && catchUpTimeout > 0 &&
        catchUpTimeout <= MAX_TIMER_DELAY)
    ) {
      throw new RangeError(
        `Cannot create SseChannel: \`catchUpTimeout\` must be milliseconds from 1 to ${MAX_TIMER_DELAY}, got ${
          describe(catchUpTimeout)
        }`,
      );
    }
    this.#catchUpTimeout = catchUpTimeout;
    this.#floor = `${this.#epoch}-0`;
    this.#keepAlive = options.keepAlive;
    this.#headers = options.headers;
    // Fail here, not at the first client, on bad writer options.
    new SseWriter({ keepAlive: this.#keepAlive, headers: this.#headers })
      .close();
    this.ready = new Promise((resolve) => this.#resolveReady = resolve);
    if (backplane !== undefined && isOrdered(backplane)) {
      if (typeof backplane.compare !== "function") {
        throw new TypeError(
          "Cannot create SseChannel: an ordered `backplane` must have a compare method",
        );
      }
      this.#ordered = backplane;
      backplane.subscribe({
        start: (history, after) => this.#start(history, after),
        entry: (entry) => this.#entry(entry),
        lost: (reason) => this.#lost(reason),
      }, this.#historySize);
    } else {
      this.#resolveReady();
      this.#clock.set(this.#origin, 0);
      this.#backplane = backplane;
      if (backplane) {
        backplane.subscribe((message) => this.#receive(message));
        // Announced before any event of ours, so that the others know of
        // this instance when a client comes to them from it.
        backplane.publish({ origin: this.#origin, seq: 0, body: "" });
      }
    }
  }

  /** How many clients are connected now. */
  get size(): number {
    return this.#clients.size;
  }

  /** True once `close()` was called: no more clients, no more events. */
  get closed(): boolean {
    return this.#closed;
  }

  /** How many clients were disconnected for falling too far behind. */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Opens a stream for the client that sent `request`, replays what it
   * missed, and keeps it registered until it goes away, whatever the reason.
   * After `close()`, answers 503.
   */
  connect(request: Request, options: SseConnectOptions = {}): Response {
    const { topics, onClose } = options;
    if (onClose !== undefined && typeof onClose !== "function") {
      throw new TypeError("Cannot connect: `onClose` must be a function");
    }
    if (topics !== undefined) {
      if (!Array.isArray(topics)) {
        throw new TypeError(
          "Cannot connect: `topics` must be an array of strings",
        );
      }
      for (const topic of topics) checkTopic("Cannot connect", topic);
    }
    if (this.#closed) {
      return new Response("The event channel is closed\n", { status: 503 });
    }
    // Events still batched are in the history: deliver them before this
    // client is counted among those who get them (or it would get them twice).
    this.#flush();
    const writer = new SseWriter({
      signal: options.signal,
      keepAlive: this.#keepAlive,
      headers: this.#headers,
    });
    const client: Client = { writer, topics: topics && new Set(topics) };
    const last = lastEventId(request);
    if (this.#ordered && this.#orderedAt === undefined) {
      client.early = { last };
    } else {
      this.#sendMissed(client, last);
    }
    this.#clients.add(client);
    writerInternals.onEnd(writer, () => {
      this.#clients.delete(client);
      clearTimeout(client.catchUp);
      onClose?.();
    });
    return writer.response;
  }

  /**
   * Sends `event` to every client (or, with `options.topic`, to the clients
   * of that topic) and returns its id. Throws as `encodeEvent` does for a bad
   * event, and {@linkcode SseClosedError} after `close()`. On an ordered
   * backplane an event has no id until it is ordered: use `publish()`.
   */
  send(event: SseEvent, options: SseSendOptions = {}): string {
    if (this.#ordered) {
      throw new TypeError(
        "Cannot send event: on an ordered backplane an event has no id until the backplane orders it; use `await channel.publish(event)`",
      );
    }
    return this.#sendEncoded(this.#encode(event, options));
  }

  #sendEncoded(
    { body, topic, id }: { body: string; topic?: string; id?: string },
  ): string {
    const seq = ++this.#seq;
    this.#backplane?.publish({ origin: this.#origin, seq, body, topic });
    return this.#deliver(this.#origin, seq, body, topic, id);
  }

  /**
   * Sends `event` as `send()` does, on any channel, and resolves with its
   * id. On an ordered backplane it resolves once the backplane has ordered
   * the event (every instance then delivers it in that order), and rejects
   * if it never will: {@linkcode SseClosedError} if the channel closes
   * first, or the backplane's error if it gave up. A bad event throws at the
   * call, as for `send()`.
   *
   * With `options.signal`, an event that an ordered backplane has not sent
   * yet when the signal aborts is withdrawn (the promise rejects with the
   * signal's reason), so that a caller can give up after a time and know the
   * event will never appear.
   *
   * @example Answer a POST once the message has its place
   * ```ts
   * import { SseChannel } from "./channel.ts";
   *
   * const room = new SseChannel();
   * await room.publish({ event: "message", data: "hi" }, {
   *   signal: AbortSignal.timeout(5000),
   * }); // "k2f9x1-1"
   * room.close();
   * ```
   */
  publish(event: SseEvent, options: SsePublishOptions = {}): Promise<string> {
    const { signal } = options;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new TypeError(
        "Cannot send event: `signal` must be an AbortSignal",
      );
    }
    const encoded = this.#encode(event, options);
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (!this.#ordered) return Promise.resolve(this.#sendEncoded(encoded));
    const { body, topic } = encoded;
    return this.#ordered.publish(body, { topic, signal });
  }

  /**
   * Sends `event` to the clients connected to this instance now, and to no
   * other instance: without an id and not kept for resume, so a client keeps
   * its place in the channel. For what is about this instance and only true
   * now, such as how many clients it has or whether it reaches its
   * backplane, which a client that reconnects elsewhere must not replay.
   * Throws as `send()` does, and a `TypeError` if the event has an `id`.
   *
   * @example Tell this server's clients how many they are
   * ```ts
   * import { SseChannel } from "./channel.ts";
   *
   * const room = new SseChannel();
   * const response = room.connect(new Request("http://localhost/events"));
   * room.sendLocal({ event: "clients", data: { count: room.size } });
   * room.close();
   * await response.text(); // 'id: k2f9x1-0\n\nevent: clients\ndata: {"count":1}\n\n'
   * ```
   */
  sendLocal(event: SseEvent, options: SseSendOptions = {}): void {
    if (this.#closed) {
      throw new SseClosedError("Cannot send event: the channel is closed");
    }
    const { topic } = options;
    if (topic !== undefined) checkTopic("Cannot send event", topic);
    if (event?.id !== undefined) {
      throw new TypeError(
        "Cannot send event: a local event has no id (clients keep their place in the channel), so `id` must be left out",
      );
    }
    const text = encodeEvent(event);
    this.#flush(); // after what was sent before it
    const bytes = ENCODER.encode(text);
    for (const client of this.#clients) {
      if (takes(client, topic)) this.#sendTo(client, text, bytes);
    }
  }

  /**
   * Validates what `send()` or `publish()` was given: the event's wire text
   * without its id, its topic, and the id it brings, if it may bring one.
   */
  #encode(
    event: SseEvent,
    { topic }: SseSendOptions,
  ): { body: string; topic: string | undefined; id: string | undefined } {
    if (this.#closed) {
      throw new SseClosedError("Cannot send event: the channel is closed");
    }
    if (topic !== undefined) checkTopic("Cannot send event", topic);
    if (event?.id === undefined) {
      return { body: encodeEvent(event), topic, id: undefined };
    }
    if (this.#ordered) {
      throw new TypeError(
        "Cannot send event: on an ordered backplane an event's id is its position, so `id` must be left out",
      );
    }
    if (this.#backplane) {
      throw new TypeError(
        "Cannot send event: a channel with a backplane assigns ids itself, so `id` must be left out",
      );
    }
    encodeEvent({ id: event.id }); // validates it
    const { id: _, ...rest } = event;
    // An event of an id alone moves the clients' last event id, no more:
    // its body is the blank line that ends it.
    const body = Object.values(rest).every((value) => value === undefined)
      ? "\n"
      : encodeEvent(rest);
    return { body, topic, id: String(event.id) };
  }

  /** Ends every client's stream and refuses new clients; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#flush();
    this.#closed = true;
    this.#backplane?.close();
    this.#ordered?.close();
    for (const client of this.#clients) {
      clearTimeout(client.catchUp);
      client.writer.close();
    }
    this.#clients.clear();
    this.#resolveReady();
  }

  #receive(message: SseBackplaneMessage): void {
    if (this.#closed || !isMessage(message)) return;
    const { origin, seq, body, topic } = message;
    if (origin === this.#origin) return;
    const last = this.#clock.get(origin);
    if (seq === 0) {
      if (last === undefined) this.#clock.set(origin, 0); // a new instance
      return;
    }
    if (last === undefined) {
      // Joined mid-stream: what this origin sent before is unknown here.
      if (seq > 1) this.#forgotten.set(origin, seq - 1);
    } else if (seq <= last) {
      return; // a duplicate
    } else if (seq !== last + 1) {
      this.#forgotten.set(origin, seq - 1);
      this.#clock.set(origin, seq - 1);
      this.#broadcastReset("the backplane lost events");
    }
    this.#deliver(origin, seq, body, topic, undefined);
  }

  /** Records an event sent here or through a backplane; returns its id. */
  #deliver(
    origin: string,
    seq: number,
    body: string,
    topic: string | undefined,
    explicitId: string | undefined,
  ): string {
    this.#clock.set(origin, seq);
    const id = explicitId ??
      (this.#backplane
        ? formatVector(this.#clock, this.#origin)
        : `${this.#epoch}-${seq}`);
    this.#record({ origin, seq, id, topic, body });
    return id;
  }

  /** Ordered: the recent past and the position the backplane starts at. */
  #start(history: SseOrderedEntry[], after: string): void {
    if (this.#closed || this.#orderedAt !== undefined) return;
    this.#floor = after;
    for (const entry of history) this.#remember(this.#numbered(entry));
    this.#orderedAt = history.at(-1)?.position ?? after;
    for (const client of this.#clients) {
      if (client.early === undefined) continue;
      const { last } = client.early;
      client.early = undefined;
      this.#sendMissed(client, last);
    }
    this.#resolveReady();
  }

  /** Ordered: the next entry of the order. */
  #entry(entry: SseOrderedEntry): void {
    if (this.#closed || this.#orderedAt === undefined) return;
    if (this.#batch.length === 0) this.#batchAfter = this.#orderedAt;
    this.#orderedAt = entry.position;
    this.#record(this.#numbered(entry));
  }

  /** Ordered: an entry of the order, numbered in this instance's history. */
  #numbered({ position, body, topic }: SseOrderedEntry): Entry {
    return { origin: "", seq: ++this.#seq, id: position, topic, body };
  }

  /**
   * What a client gets first: the id of this instance's position, or what
   * it missed since `last`.
   */
  #sendMissed(client: Client, last: string | undefined): void {
    const text = last === undefined
      ? `id: ${this.#position()}\n\n`
      : this.#replay(last, client);
    if (text !== "") writerInternals.send(client.writer, text);
  }

  /** Keeps an event for resume and queues it for the clients. */
  #record(entry: Entry): void {
    this.#remember(entry);
    if (this.#batch.push(entry) === 1) queueMicrotask(this.#flush);
    this.#batchUnits += entry.body.length;
    if (this.#batchUnits > BATCH_UNITS) this.#flush();
  }

  /**
   * Hands the events sent in this turn of the event loop to the clients:
   * encoded once as one chunk, shared by every client that takes them all.
   * Runs as a microtask, so events still go out within the same turn.
   */
  #flush = (): void => {
    const batch = this.#batch;
    if (batch.length === 0) return;
    this.#batch = [];
    this.#batchUnits = 0;
    const forEveryone = batch.every((entry) => entry.topic === undefined);
    let shared: string | undefined;
    let sharedBytes: Uint8Array | undefined;
    for (const client of this.#clients) {
      if (
        client.ahead === undefined && client.after === undefined &&
        (forEveryone || !client.topics)
      ) {
        shared ??= batch.map((entry) => `id: ${entry.id}\n${entry.body}`)
          .join("");
        sharedBytes ??= ENCODER.encode(shared);
        this.#sendTo(client, shared, sharedBytes);
      } else {
        const text = this.#textFor(client, batch);
        if (text !== "") this.#sendTo(client, text);
      }
    }
  };

  /** Queues `text` for one client, and drops it if it is too far behind. */
  #sendTo(client: Client, text: string, bytes?: Uint8Array): void {
    writerInternals.send(client.writer, text, bytes);
    if (client.writer.bufferedAmount > this.#maxBufferedAmount) {
      this.#dropped++;
      writerInternals.drop(client.writer);
    }
  }

  /** The part of `batch` for a client with topics or ahead of this instance. */
  #textFor(client: Client, batch: Entry[]): string {
    let text = "";
    for (let i = 0; i < batch.length; i++) {
      const { origin, seq, id, topic, body } = batch[i];
      if (client.after !== undefined) {
        const order = this.#ordered!.compare(id, client.after);
        const before = i === 0 ? this.#batchAfter : batch[i - 1].id;
        if (order < 0) {
          client.skipped = (client.skipped ?? 0) + 1;
          if (client.skipped <= this.#historySize) continue;
          text += this.#giveUp(
            client,
            "is too far ahead of this server",
            before,
          );
        } else {
          this.#caughtUp(client);
          if (order === 0) continue;
          // Past the client's id without meeting it: the order never had it
          // (or has lost it), so what the client missed is unknown.
          text += this.#resetText(
            "the last event id is not in the order",
            before,
          );
        }
      }
      if (!takes(client, topic)) continue;
      if (client.ahead === undefined) {
        text += `id: ${id}\n${body}`;
      } else if (!this.#hasSeen(client, origin, seq)) {
        text += `id: ${this.#vectorFor(client)}\n${body}`;
      }
    }
    return text;
  }

  /** Whether an `ahead` client has the event already; updates `ahead`. */
  #hasSeen(client: Client, origin: string, seq: number): boolean {
    const ahead = client.ahead!;
    const last = ahead.get(origin);
    if (last === undefined) return false;
    if (seq >= last) {
      ahead.delete(origin);
      if (ahead.size === 0) this.#caughtUp(client);
    }
    return seq <= last;
  }

  /**
   * Bounds the wait of a client that is ahead of this instance: after
   * `catchUpTimeout` ms, if it still is, it gets a reset.
   */
  #awaitCatchUp(client: Client): void {
    client.catchUp = setTimeout(() => {
      client.catchUp = undefined;
      this.#flush(); // what is batched may be what the client waits for
      if (client.ahead === undefined && client.after === undefined) return;
      this.#sendTo(
        client,
        this.#giveUp(
          client,
          `is ahead of this server, which did not catch up within ${this.#catchUpTimeout} ms`,
        ),
      );
    }, this.#catchUpTimeout);
  }

  /** The client is no longer ahead of this instance. */
  #caughtUp(client: Client): void {
    client.after = undefined;
    client.ahead = undefined;
    client.skipped = undefined;
    clearTimeout(client.catchUp);
    client.catchUp = undefined;
  }

  /** Stops waiting for a client that is ahead: its reset, at `id`. */
  #giveUp(client: Client, why: string, id?: string): string {
    this.#caughtUp(client);
    return this.#resetText(`the last event id ${why}`, id);
  }

  /** The id for a client: this instance's vector, raised by `ahead`. */
  #vectorFor(client: Client): string {
    const vector = new Map(this.#clock);
    for (const [origin, seq] of client.ahead ?? []) vector.set(origin, seq);
    return formatVector(vector, this.#origin);
  }

  /** The id of this instance's current position. */
  #position(): string {
    if (this.#ordered) return this.#orderedAt!;
    if (this.#backplane) return formatVector(this.#clock, this.#origin);
    return this.#history.at(-1)?.id ?? `${this.#epoch}-${this.#seq}`;
  }

  #remember(entry: Entry): void {
    this.#history.push(entry);
    this.#historyUnits += entry.body.length + entry.id.length;
    if (!this.#backplane) this.#positions.set(entry.id, entry.seq);
    while (
      this.#history.length > this.#historySize ||
      this.#historyUnits > this.#historyBytes
    ) {
      const old = this.#history.shift()!;
      this.#historyUnits -= old.body.length + old.id.length;
      if (this.#backplane) {
        this.#forgotten.set(old.origin, old.seq);
      } else {
        this.#floor = old.id;
        if (this.#positions.get(old.id) === old.seq) {
          this.#positions.delete(old.id);
        }
      }
    }
  }

  /**
   * Ordered: the backplane may have lost entries after the last one given.
   * Every client now connected gets a reset; and since a client that later
   * resumes from anything before here would be replayed across the gap, the
   * history is emptied and nothing before the gap resumes again.
   */
  #lost(reason: string): void {
    if (this.#closed || this.#orderedAt === undefined) return;
    this.#broadcastReset(reason);
    this.#history = [];
    this.#historyUnits = 0;
    this.#positions.clear();
    this.#floor = undefined;
    this.#gapAt = this.#orderedAt;
  }

  /**
   * The wire text for a client resuming after the id `last`: the events it
   * missed, each with an id that names exactly what the client then has; or
   * a reset event when they cannot be known.
   */
  #replay(last: string, client: Client): string {
    if (this.#backplane) return this.#replayVector(last, client);
    // Where in the history the client's next event is.
    const seq = this.#positions.get(last);
    let from = seq === undefined ? undefined : seq + 1 - this.#history[0].seq;
    if (from === undefined && last === this.#floor) from = 0;
    if (from === undefined) {
      const reason = this.#ordered
        ? this.#unknownOrdered(last, client)
        : this.#unknown(last);
      return reason === "" ? "" : this.#resetText(reason);
    }
    let text = "";
    for (let i = from; i < this.#history.length; i++) {
      const { id, topic, body } = this.#history[i];
      if (takes(client, topic)) text += `id: ${id}\n${body}`;
    }
    return text;
  }

  /** Without a backplane: why the id `last` cannot be resumed. */
  #unknown(last: string): string {
    const [, epoch, count] = LOCAL_ID.exec(last) ?? [];
    if (epoch !== undefined && epoch !== this.#epoch) {
      return "the last event id is from another run of this channel (the server restarted, or it is another server): what followed it is unknown here";
    }
    if (count !== undefined && Number(count) > this.#seq) {
      return "the last event id is ahead of this channel";
    }
    return `the last event id ${describe(last)} is unknown or too old`;
  }

  /**
   * Ordered: why the id `last` cannot be resumed from the history; or "" if
   * the client is ahead of this instance and waits for it to catch up.
   */
  #unknownOrdered(last: string, client: Client): string {
    const order = this.#ordered!.compare(last, this.#orderedAt!);
    if (Number.isNaN(order)) {
      return `the last event id ${describe(last)} is not one of ours`;
    }
    if (order > 0) {
      // The client comes from an instance further along the order.
      client.after = last;
      this.#awaitCatchUp(client);
      return "";
    }
    if (
      this.#gapAt !== undefined &&
      this.#ordered!.compare(last, this.#gapAt) <= 0
    ) {
      return "events after the last event id were lost by the backplane";
    }
    return `the last event id ${describe(last)} is unknown or too old`;
  }

  /** `#replay` on an unordered backplane, whose ids are vectors. */
  #replayVector(last: string, client: Client): string {
    const seen = this.#seen(last);
    if (typeof seen === "string") return this.#resetText(seen);
    let text = "";
    for (const entry of this.#history) {
      if (entry.seq <= (seen.get(entry.origin) ?? 0)) continue;
      seen.set(entry.origin, entry.seq);
      if (takes(client, entry.topic)) {
        text += `id: ${formatVector(seen, this.#origin)}\n${entry.body}`;
      }
    }
    for (const [origin, seq] of seen) {
      if (seq > (this.#clock.get(origin) ?? 0)) {
        (client.ahead ??= new Map()).set(origin, seq);
      }
    }
    if (client.ahead !== undefined) this.#awaitCatchUp(client);
    return text;
  }

  /**
   * What a client whose last event id is the vector `id` has seen, as the
   * last seq of each origin; or why the events it missed cannot be replayed.
   */
  #seen(id: string): Vector | string {
    const seen = parseVector(id);
    if (seen === undefined) {
      return `the last event id ${describe(id)} is not one of ours`;
    }
    for (const [origin, forgotten] of this.#forgotten) {
      if ((seen.get(origin) ?? 0) < forgotten) {
        return "events after the last event id are no longer in the history";
      }
    }
    for (const [origin, seq] of seen) {
      // Sent before this instance listened, or by one that has gone since:
      // what followed it cannot be known here.
      if (seq > 0 && !this.#clock.has(origin)) {
        return "the last event id names a server this one has not heard from";
      }
      if (seq - (this.#clock.get(origin) ?? 0) > this.#historySize) {
        return "the last event id is too far ahead of this server";
      }
    }
    return seen;
  }

  /** A reset event, with this instance's position as its id by default. */
  #resetText(reason: string, id: string = this.#position()): string {
    return encodeEvent({ event: "reset", id, data: { reason } });
  }

  #broadcastReset(reason: string): void {
    this.#flush();
    const text = this.#resetText(reason);
    const bytes = ENCODER.encode(text);
    for (const client of this.#clients) {
      this.#caughtUp(client);
      this.#sendTo(client, text, bytes);
    }
  }
}
