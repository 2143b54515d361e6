// Internal to ssekit: a channel's connected clients, indexed by topic, and
// the fan-out of a batch of events to them. mod.ts exports none of it.

import { type Client, type Entry, frame, framed } from "./_scheme.ts";

const ENCODER = new TextEncoder();

/** Queues text for one client; `bytes`, if given, is the text encoded. */
export type Send = (client: Client, text: string, bytes?: Uint8Array) => void;

/**
 * The clients of a channel. An event sent to a topic costs in proportion to
 * the clients that take it (those of the topic and those without topics),
 * not to all of them.
 */
export class Audience {
  #all = new Set<Client>();
  /** The clients connected without topics, which take every event. */
  #everyone = new Set<Client>();
  /** The clients of each topic. */
  #topics = new Map<string, Set<Client>>();

  /** How many clients there are. */
  get size(): number {
    return this.#all.size;
  }

  /** Every client, in the order they came. */
  [Symbol.iterator](): IterableIterator<Client> {
    return this.#all.values();
  }

  add(client: Client): void {
    this.#all.add(client);
    if (client.topics === undefined) this.#everyone.add(client);
    for (const topic of client.topics ?? []) {
      let clients = this.#topics.get(topic);
      if (clients === undefined) this.#topics.set(topic, clients = new Set());
      clients.add(client);
    }
  }

  /** Forgets every client. */
  clear(): void {
    this.#all.clear();
    this.#everyone.clear();
    this.#topics.clear();
  }

  delete(client: Client): void {
    this.#all.delete(client);
    if (client.topics === undefined) {
      this.#everyone.delete(client);
      return;
    }
    for (const topic of client.topics) {
      const clients = this.#topics.get(topic);
      clients?.delete(client);
      if (clients?.size === 0) this.#topics.delete(topic);
    }
  }

  /** The clients that take an event sent to `topic` (or to everyone). */
  takers(topic: string | undefined): Iterable<Client>[] {
    if (topic === undefined) return [this.#all];
    const clients = this.#topics.get(topic);
    return clients === undefined ? [this.#everyone] : [this.#everyone, clients];
  }

  /**
   * Hands `batch` to every client that takes some of it, but those in
   * `skip`: the clients that take it all share one text, encoded once; the
   * others each get their part.
   */
  fanOut(batch: readonly Entry[], skip: ReadonlySet<Client>, send: Send): void {
    const { topic } = batch[0];
    const oneTopic = batch.every((entry) => entry.topic === topic);
    let text: string | undefined;
    let bytes: Uint8Array | undefined;
    for (const clients of oneTopic ? this.takers(topic) : [this.#everyone]) {
      for (const client of clients) {
        if (skip.size !== 0 && skip.has(client)) continue;
        text ??= batch.map((entry) => frame(entry.id, entry.body)).join("");
        bytes ??= ENCODER.encode(text);
        send(client, text, bytes);
      }
    }
    if (oneTopic) return;
    // Several topics: each client with topics takes its part, if any.
    let clients: Iterable<Client> = this.#all;
    if (batch.every((entry) => entry.topic !== undefined)) {
      const topics = new Set(batch.map((entry) => entry.topic!));
      clients = new Set(
        [...topics].flatMap((topic) => [...this.#topics.get(topic) ?? []]),
      );
    }
    for (const client of clients) {
      if (client.topics === undefined || skip.has(client)) continue;
      const part = framed(client, batch);
      if (part !== "") send(client, part);
    }
  }
}
