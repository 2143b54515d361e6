/**
 * {@linkcode SseChannel}: one event to every connected client, with resume
 * from a bounded history, slow clients dropped before they cost memory, and a
 * backplane to share the channel between instances: an
 * {@linkcode SseOrderedBackplane} (one order for all, such as a Redis stream)
 * or an {@linkcode SseBackplane} (each sender's order only), whose contracts
 * are in `./backplane.ts`.
 *
 * @module
 */

import {
  checkWriterOptions,
  encodeEvent,
  lastEventId,
  SseClosedError,
  type SseEvent,
  SseWriter,
  writerInternals,
} from "./sse.ts";
import type { SseBackplane, SseOrderedBackplane } from "./backplane.ts";
import { checkInteger, MAX_TIMER_DELAY } from "./_validate.ts";
import { withResolvers } from "./_promise.ts";
import {
  type Client,
  type Entry,
  frame,
  type Host,
  type IdScheme,
  isReset,
  type Outgoing,
  resetText,
  type SchemeOptions,
} from "./_scheme.ts";
import { Audience, type Send } from "./_audience.ts";
import { LocalIds } from "./_local_ids.ts";
import { VectorIds } from "./_vector_ids.ts";
import { OrderedIds } from "./_ordered_ids.ts";

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
   * @default {5000}
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

/**
 * A channel's counters, as {@linkcode SseChannel.stats} reads them: what a
 * dashboard charts. All count since the channel was created, but `clients`,
 * which is `connects - disconnects`.
 */
export interface SseChannelStats {
  /** Clients connected now. */
  readonly clients: number;
  /** Clients that connected. */
  readonly connects: number;
  /**
   * Clients whose stream ended, for whatever reason: they left, were
   * dropped, or the channel closed.
   */
  readonly disconnects: number;
  /** Clients disconnected for falling behind (`maxBufferedAmount`). */
  readonly dropped: number;
  /**
   * Events delivered to this instance's clients, each counted once however
   * many clients take it: those sent here (`send`, `publish`, `sendLocal`)
   * and those from other instances through the backplane.
   */
  readonly events: number;
  /**
   * Bytes handed to the clients' streams: events with their ids, resets and
   * keep-alive comments; not what a dropped client had queued.
   */
  readonly bytes: number;
  /**
   * Clients that came back with a last event id and got what they missed,
   * without a reset (a client ahead of this instance once it caught up).
   */
  readonly resumes: number;
  /** `event: reset` sent, one per client told. */
  readonly resets: number;
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

const ENCODER = new TextEncoder();
/** A batch of events is handed to the clients once it holds this much text. */
const BATCH_UNITS = 65_536;
const DEFAULT_CATCH_UP_TIMEOUT = 5000;
const CREATE = "Cannot create SseChannel";
const SEND = "Cannot send event";

function isOrdered(
  backplane: SseBackplane | SseOrderedBackplane,
): backplane is SseOrderedBackplane {
  return (backplane as SseOrderedBackplane).ordered === true;
}

function checkTopic(action: string, topic: unknown): void {
  if (typeof topic !== "string") {
    throw new TypeError(
      `${action}: a topic must be a string, got ${
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
  #ready = withResolvers<void>();
  #clients = new Audience();
  /** Clients ahead of this instance: each batch goes through `catchUp`. */
  #ahead = new Set<Client>();
  /** Clients that came before the scheme knew its position: their ids. */
  #waiting = new Map<Client, string | undefined>();
  /** Events kept but not yet handed to the clients (see `#flush`). */
  #batch: Entry[] = [];
  #batchUnits = 0;
  /** Batch length at the last look of `#flushWhenIdle`; -1: none due. */
  #lastLook = -1;
  #counts = {
    connects: 0,
    disconnects: 0,
    dropped: 0,
    events: 0,
    resumes: 0,
    resets: 0,
  };
  /** Bytes handed to the streams of clients that have left. */
  #bytesOfGone = 0;
  #closed = false;
  #maxBufferedAmount: number;
  #catchUpTimeout: number;
  #writerOptions: { keepAlive?: number; headers?: HeadersInit };
  #scheme: IdScheme;

  /** Creates a channel; see {@linkcode SseChannelOptions} for defaults. */
  constructor(options: SseChannelOptions = {}) {
    const limit = (name: keyof SseChannelOptions, fallback: number) =>
      options[name] === undefined
        ? fallback
        : checkInteger(CREATE, name, options[name]);
    const history = {
      size: limit("historySize", 1000),
      bytes: limit("historyBytes", 1_048_576),
    };
    this.#maxBufferedAmount = limit("maxBufferedAmount", 1_048_576);
    if (this.#maxBufferedAmount < history.bytes) {
      throw new RangeError(
        `${CREATE}: \`maxBufferedAmount\` (${this.#maxBufferedAmount}) must be at least \`historyBytes\` (${history.bytes}), or a resuming client could never catch up`,
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
        `${CREATE}: \`backplane\` must have publish, subscribe and close methods`,
      );
    }
    this.#catchUpTimeout = checkInteger(
      CREATE,
      "catchUpTimeout",
      options.catchUpTimeout ?? DEFAULT_CATCH_UP_TIMEOUT,
      {
        min: 1,
        max: MAX_TIMER_DELAY,
        rule: `milliseconds from 1 to ${MAX_TIMER_DELAY}`,
      },
    );
    this.#writerOptions = {
      keepAlive: options.keepAlive,
      headers: options.headers,
    };
    checkWriterOptions(this.#writerOptions);
    this.ready = this.#ready.promise;
    const host: Host<Entry> = {
      deliver: (entry) => this.#deliver(entry),
      reset: (reason) => this.#broadcastReset(reason),
      started: () => this.#started(),
    };
    const schemeOptions: SchemeOptions = { history };
    this.#scheme = backplane === undefined
      ? new LocalIds(host, schemeOptions)
      : isOrdered(backplane)
      ? new OrderedIds(backplane, host, schemeOptions)
      : new VectorIds(backplane, host, schemeOptions);
    if (this.#scheme.position() !== undefined) this.#ready.resolve();
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
    return this.#counts.dropped;
  }

  /**
   * The channel's counters (see {@linkcode SseChannelStats}), as a new
   * plain object: to log, to serve as JSON or in the Prometheus format.
   * Counting costs the channel next to nothing (a few additions per event
   * and per client that comes or goes); reading them walks the clients
   * connected now, once, to add up their bytes.
   *
   * @example What one client of one event cost
   * ```ts
   * import { SseChannel } from "./channel.ts";
   *
   * const room = new SseChannel();
   * const response = room.connect(new Request("http://localhost/events"));
   * room.send({ event: "message", data: "hi" });
   * room.close();
   * await response.text(); // 52 bytes: its position, then the event
   * room.stats;
   * // { clients: 0, connects: 1, disconnects: 1, dropped: 0, events: 1,
   * //   resumes: 0, resets: 0, bytes: 52 }
   * ```
   */
  get stats(): SseChannelStats {
    let bytes = this.#bytesOfGone;
    for (const client of this.#clients) {
      bytes += writerInternals.sent(client.writer);
    }
    return { clients: this.#clients.size, ...this.#counts, bytes };
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
      ...this.#writerOptions,
      signal: options.signal,
    });
    const client: Client = { writer, topics: topics && new Set(topics) };
    this.#counts.connects++;
    const last = lastEventId(request);
    if (this.#scheme.position() === undefined) this.#waiting.set(client, last);
    else this.#resume(client, last);
    this.#clients.add(client);
    writerInternals.onEnd(writer, () => {
      this.#remove(client);
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
    return this.#scheme.send(this.#encode(event, options));
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
      throw new TypeError(`${SEND}: \`signal\` must be an AbortSignal`);
    }
    const outgoing = this.#encode(event, options);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return this.#scheme.publish(outgoing, signal);
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
      throw new SseClosedError(`${SEND}: the channel is closed`);
    }
    const { topic } = options;
    if (topic !== undefined) checkTopic(SEND, topic);
    if (event?.id !== undefined) {
      throw new TypeError(
        `${SEND}: a local event has no id (clients keep their place in the channel), so \`id\` must be left out`,
      );
    }
    const text = encodeEvent(event);
    this.#flush(); // after what was sent before it
    this.#counts.events++;
    const bytes = ENCODER.encode(text);
    for (const clients of this.#clients.takers(topic)) {
      for (const client of clients) this.#sendTo(client, text, bytes);
    }
  }

  /** Ends every client's stream and refuses new clients; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#flush();
    this.#closed = true;
    this.#scheme.close();
    // The clients go all at once, so that each writer's end only counts its
    // client (see `#remove`): removing them one by one was most of the cost
    // of a close.
    for (const client of this.#ahead) this.#caughtUp(client);
    const clients = [...this.#clients];
    this.#clients.clear();
    this.#waiting.clear();
    for (const client of clients) client.writer.close();
    this.#ready.resolve();
  }

  /**
   * Validates what `send()` or `publish()` was given: the event's wire text
   * without its id, its topic, and the id it brings, if it may bring one.
   */
  #encode(event: SseEvent, { topic }: SseSendOptions): Outgoing {
    if (this.#closed) {
      throw new SseClosedError(`${SEND}: the channel is closed`);
    }
    if (topic !== undefined) checkTopic(SEND, topic);
    if (event?.id === undefined) {
      return { body: encodeEvent(event), topic, id: undefined };
    }
    const refusal = this.#scheme.refusesIds;
    if (refusal !== undefined) {
      throw new TypeError(`${SEND}: ${refusal}, so \`id\` must be left out`);
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

  #remove(client: Client): void {
    this.#counts.disconnects++;
    this.#bytesOfGone += writerInternals.sent(client.writer);
    if (this.#closed) return; // close() emptied the sets
    this.#clients.delete(client);
    this.#waiting.delete(client);
    this.#caughtUp(client);
  }

  /**
   * What a client gets first: the id of this instance's position, or what
   * it missed since `last`.
   */
  #resume(client: Client, last: string | undefined): void {
    const text = last === undefined
      ? frame(this.#scheme.position()!, "\n")
      : this.#scheme.resume(client, last);
    if (text !== "") writerInternals.send(client.writer, text);
    if (client.ahead !== undefined) this.#awaitCatchUp(client);
    else if (last !== undefined) this.#countResume(text);
  }

  /** Counts a client that resumed with `text`, or was reset. */
  #countResume(text: string): void {
    if (isReset(text)) this.#counts.resets++;
    else this.#counts.resumes++;
  }

  /** The scheme knows its position: the clients that waited resume. */
  #started(): void {
    for (const [client, last] of this.#waiting) this.#resume(client, last);
    this.#waiting.clear();
    this.#ready.resolve();
  }

  /** Queues an event for the clients; a microtask hands the batch over. */
  #deliver(entry: Entry): void {
    this.#counts.events++;
    this.#batch.push(entry);
    if (this.#lastLook === -1) {
      this.#lastLook = 0; // look twice: the producer may await this send
      queueMicrotask(this.#flushWhenIdle);
    }
    this.#batchUnits += entry.body.length;
    if (this.#batchUnits > BATCH_UNITS) this.#flush();
  }

  /**
   * Flushes once the producer pauses: a microtask looks again while the
   * batch keeps growing, so that events sent between awaits still go out
   * together, within this turn of the event loop. The writers then deliver
   * at once: the channel waits once, not once per client.
   */
  #flushWhenIdle = (): void => {
    const length = this.#batch.length;
    if (length !== this.#lastLook && this.#batchUnits <= BATCH_UNITS) {
      this.#lastLook = length;
      queueMicrotask(this.#flushWhenIdle);
      return;
    }
    this.#lastLook = -1;
    this.#flush();
  };

  /**
   * Hands the events sent in this turn of the event loop to the clients
   * that take them.
   */
  #flush = (): void => {
    const batch = this.#batch;
    if (batch.length === 0) return;
    this.#batch = [];
    this.#batchUnits = 0;
    const caughtUp: Client[] = [];
    for (const client of this.#ahead) {
      const text = this.#scheme.catchUp(client, batch);
      if (text !== "") this.#sendTo(client, text);
      if (client.ahead === undefined) {
        caughtUp.push(client);
        this.#countResume(text);
      }
    }
    this.#clients.fanOut(batch, this.#ahead, this.#sendTo);
    for (const client of caughtUp) this.#caughtUp(client);
  };

  /** Queues `text` for one client, and drops it if it is too far behind. */
  #sendTo: Send = (client, text, bytes) => {
    writerInternals.send(client.writer, text, bytes);
    if (client.writer.bufferedAmount > this.#maxBufferedAmount) {
      this.#counts.dropped++;
      writerInternals.drop(client.writer);
    }
  };

  /**
   * Bounds the wait of a client that is ahead of this instance: after
   * `catchUpTimeout` ms, if it still is, it gets a reset.
   */
  #awaitCatchUp(client: Client): void {
    this.#ahead.add(client);
    client.timer = setTimeout(() => {
      client.timer = undefined;
      this.#flush(); // what is batched may be what the client waits for
      if (client.ahead === undefined) return;
      this.#caughtUp(client);
      this.#counts.resets++;
      this.#sendTo(
        client,
        resetText(
          `the last event id is ahead of this server, which did not catch up within ${this.#catchUpTimeout} ms`,
          this.#scheme.position()!,
        ),
      );
    }, this.#catchUpTimeout);
  }

  /** The client is no longer ahead of this instance. */
  #caughtUp(client: Client): void {
    client.ahead = undefined;
    clearTimeout(client.timer);
    client.timer = undefined;
    this.#ahead.delete(client);
  }

  #broadcastReset(reason: string): void {
    this.#flush();
    const text = resetText(reason, this.#scheme.position()!);
    const bytes = ENCODER.encode(text);
    this.#counts.resets += this.#clients.size;
    for (const client of this.#clients) {
      this.#caughtUp(client);
      this.#sendTo(client, text, bytes);
    }
  }
}
