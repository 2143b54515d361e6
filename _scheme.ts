// Internal to ssekit: what a channel's id scheme is, and what the schemes
// share. A channel numbers its events in one of three ways, chosen once by
// its backplane: none (_local_ids.ts), an unordered one (_vector_ids.ts) or
// an ordered one (_ordered_ids.ts). mod.ts exports none of it.

import { encodeEvent, type SseWriter } from "./sse.ts";
import type { HistoryLimits } from "./_history.ts";

/** An event as a channel keeps and delivers it. */
export interface Entry {
  /** The id clients get with it. */
  id: string;
  topic: string | undefined;
  /** The wire text without the `id:` line. */
  body: string;
}

/** What `send()` and `publish()` hand to a scheme, once validated. */
export interface Outgoing {
  /** The wire text without an `id:` line. */
  body: string;
  topic: string | undefined;
  /** The id the event brought, where the scheme allows one. */
  id: string | undefined;
}

/**
 * A connected client. `A` is what its scheme notes while the client is
 * ahead of this instance (it comes from an instance further along).
 */
export interface Client<A = unknown> {
  writer: SseWriter;
  /** The topics it takes besides the events without one; all if absent. */
  topics: Set<string> | undefined;
  /**
   * Set by the scheme while the client is ahead: events it has already are
   * not sent to it again. Cleared once this instance has caught up.
   */
  ahead?: A;
  /** The channel's: resets the client if it stays ahead too long. */
  timer?: ReturnType<typeof setTimeout>;
}

/** What a scheme asks of its channel. */
export interface Host<E extends Entry> {
  /** Delivers an entry (already kept for resume) to the clients. */
  deliver(entry: E): void;
  /** Sends every client `event: reset`, with the scheme's position. */
  reset(reason: string): void;
  /** The scheme knows its position now: clients that waited resume. */
  started(): void;
}

/** What every scheme is given. */
export interface SchemeOptions {
  history: HistoryLimits;
}

/**
 * How a channel numbers its events and resumes its clients: one of three,
 * each in its own module, chosen when the channel is made.
 */
export interface IdScheme<A = unknown> {
  /** Why an event may not bring its own id; undefined if it may. */
  readonly refusesIds: string | undefined;
  /** The id of this instance's position; undefined until it knows it. */
  position(): string | undefined;
  /** Numbers an event, keeps it for resume, delivers it; its id. */
  send(event: Outgoing): string;
  /** As `send`, where the id may be known only later; resolves with it. */
  publish(event: Outgoing, signal: AbortSignal | undefined): Promise<string>;
  /**
   * The wire text for a client that resumes after the id `last`: what it
   * missed, or a reset when that cannot be known; or less, with `ahead`
   * set, when the client is ahead of this instance.
   */
  resume(client: Client<A>, last: string): string;
  /**
   * The part of `batch` for a client that is `ahead`; clears `ahead` once
   * this instance has caught up with the client, or has given up on it.
   */
  catchUp(client: Client<A>, batch: readonly Entry[]): string;
  /** Stops the backplane, if any. */
  close(): void;
}

/** One event with its id, as clients get it. */
export function frame(id: string, body: string): string {
  return `id: ${id}\n${body}`;
}

/** Whether `client` takes an event sent to `topic` (or to everyone). */
export function takes(client: Client, topic: string | undefined): boolean {
  return topic === undefined || !client.topics || client.topics.has(topic);
}

/** The entries that `client` takes, each with its id. */
export function framed(client: Client, entries: readonly Entry[]): string {
  let text = "";
  for (const { id, topic, body } of entries) {
    if (takes(client, topic)) text += frame(id, body);
  }
  return text;
}

/** A reset event at the position `id`: the client should reload its state. */
export function resetText(reason: string, id: string): string {
  return encodeEvent({ event: "reset", id, data: { reason } });
}

/**
 * Whether a text that a scheme made for a client starts with a reset:
 * `resetText` begins with its event line, and every framed event with its
 * `id:` line.
 */
export function isReset(text: string): boolean {
  return text.startsWith("event: reset\n");
}
