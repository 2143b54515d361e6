/**
 * The demo's broadcast room: the page `/broadcast`, where a message `POST`ed
 * to `/broadcast/messages` reaches every client of `/broadcast/events`,
 * through one {@linkcode SseChannel} (across instances, with a backplane).
 *
 * @module
 */

import {
  type SseBackplane,
  SseChannel,
  type SseChannelStats,
  SseClosedError,
  type SseEvent,
  type SseOrderedBackplane,
} from "../mod.ts";
import { RedisBackplane, type RedisBackplaneState } from "../redis.ts";
import {
  asset,
  type DemoApp,
  type Logger,
  repeatedParameter,
  type Route,
  shuttingDown,
  streamHead,
  text,
  unavailable,
} from "./http.ts";
import type { Metric } from "./metrics.ts";

/** The longest broadcast message accepted, in characters. */
export const MAX_MESSAGE_LENGTH = 500;
/**
 * How long a broadcast `POST` waits for the backplane to take its message,
 * in milliseconds, before it is answered with 503.
 */
export const PUBLISH_TIMEOUT_MS = 5000;

/** Counters of the broadcast room. */
export interface RoomStats {
  /** Clients of the broadcast page connected to this instance now. */
  readonly clients: number;
}

/** Options for {@linkcode createRoom}. */
export interface RoomOptions {
  /** Shares the room with other instances. */
  backplane?: SseBackplane | SseOrderedBackplane;
  /** The channel's keep-alive period, in milliseconds (as `SseChannel`). */
  keepAlive?: number;
}

/** The states of a `RedisBackplane`, for `/metrics`. */
const REDIS_STATES: RedisBackplaneState[] = [
  "connecting",
  "connected",
  "unreachable",
];

/** Each counter of {@linkcode SseChannelStats}, named for `/metrics`. */
const CHANNEL_COUNTERS: [keyof SseChannelStats, string, string][] = [
  ["connects", "connects_total", "Clients that connected."],
  ["disconnects", "disconnects_total", "Clients whose stream ended."],
  ["dropped", "dropped_total", "Clients dropped for falling behind."],
  ["events", "events_total", "Events delivered, each counted once."],
  ["bytes", "bytes_total", "Bytes handed to the clients' streams."],
  ["resumes", "resumes_total", "Clients that resumed from a last event id."],
  ["resets", "resets_total", "Reset events sent, one per client told."],
];

/**
 * Creates the broadcast room: its page, its script, `GET /broadcast/events`
 * and `POST /broadcast/messages`, shared through `options.backplane` if
 * given. Its shutdown closes the room (every client gets the end of its
 * stream) and answers later joins and messages with 503.
 */
export function createRoom(
  log: Logger,
  { backplane, keepAlive }: RoomOptions = {},
): DemoApp<RoomStats> {
  const room = new SseChannel({ backplane, keepAlive });
  // Facts about this server only (how many clients it has, whether it
  // reaches Redis) go to its own clients, and into no shared history.
  const redis = backplane instanceof RedisBackplane ? backplane : undefined;
  const announce = () => {
    if (room.closed) return;
    room.sendLocal({ event: "clients", data: { count: room.size } });
  };
  const announceBackplane = () => {
    if (room.closed || redis === undefined) return;
    room.sendLocal({ event: "backplane", data: { state: redis.state } });
  };
  redis?.addEventListener("statechange", announceBackplane);

  /** `GET /broadcast/events`: joins the room (resuming, if reconnecting). */
  const joinRoom: Route = (request, client, url) => {
    const repeated = repeatedParameter(url, ["lastEventId"]);
    if (repeated !== undefined) return text(400, `Bad request: ${repeated}`);
    if (room.closed) return shuttingDown();
    if (request.method === "HEAD") return streamHead();
    const response = room.connect(request, {
      onClose() {
        log.info(`broadcast left by ${client}, ${room.size} connected`);
        announce();
      },
    });
    log.info(`broadcast joined from ${client}, ${room.size} connected`);
    announce();
    announceBackplane();
    return response;
  };

  /** `POST /broadcast/messages`: a text/plain message for every client. */
  const postMessage: Route = async (request, client) => {
    const message = await readMessage(request);
    if (message.error !== undefined) {
      log.warn(`broadcast message rejected from ${client}: ${message.error}`);
      return text(400, `Bad request: ${message.error}`);
    }
    if (room.closed) return shuttingDown();
    if (redis?.state === "unreachable") {
      return unavailable(
        "this server cannot reach Redis now; the message was not sent",
      );
    }
    // Resolves once the message has its place in the room's order (at
    // once, without a backplane): every server then delivers it.
    const sent = await publishWithin(room, {
      event: "message",
      data: { text: message.text, at: new Date().toISOString() },
    }, PUBLISH_TIMEOUT_MS);
    if (sent.id === undefined) {
      if (sent.error instanceof SseClosedError) return shuttingDown();
      log.warn(`broadcast message from ${client} not sent: ${sent.error}`);
      return unavailable(sent.message);
    }
    log.info(`broadcast message ${sent.id} from ${client} to ${room.size}`);
    return new Response(JSON.stringify({ id: sent.id }) + "\n", {
      status: 201,
      headers: { "content-type": "application/json; charset=utf-8" },
    });
  };

  return {
    routes: {
      "/broadcast": {
        GET: asset("broadcast.html", "text/html; charset=utf-8", log),
      },
      "/broadcast.js": {
        GET: asset("broadcast.js", "text/javascript; charset=utf-8", log),
      },
      "/broadcast/events": { GET: joinRoom },
      "/broadcast/messages": { POST: postMessage },
    },
    shutdown() {
      redis?.removeEventListener("statechange", announceBackplane);
      room.close();
    },
    stats: {
      get clients() {
        return room.size;
      },
    },
    metrics() {
      const stats = room.stats;
      const labels = { channel: "room" };
      const metrics: Metric[] = [{
        name: "ssekit_channel_clients",
        help: "Clients connected now.",
        type: "gauge",
        samples: [{ labels, value: stats.clients }],
      }];
      for (const [key, suffix, help] of CHANNEL_COUNTERS) {
        metrics.push({
          name: `ssekit_channel_${suffix}`,
          help,
          type: "counter",
          samples: [{ labels, value: stats[key] }],
        });
      }
      if (redis !== undefined) {
        metrics.push({
          name: "ssekit_backplane_state",
          help: "Whether this server reaches Redis: 1 for its state now.",
          type: "gauge",
          samples: REDIS_STATES.map((state) => ({
            labels: { ...labels, state },
            value: redis.state === state ? 1 : 0,
          })),
        });
      }
      return metrics;
    },
  };
}

/**
 * Publishes `event` to `room`, waiting at most `ms` milliseconds: the id, or
 * the error and what to tell the client. At the limit, a message the
 * backplane has not sent yet is withdrawn, so the client can be told it was
 * not sent; one already sent, whose outcome Redis has not confirmed, may
 * still appear, and the client is told that.
 */
async function publishWithin(
  room: SseChannel,
  event: SseEvent,
  ms: number,
): Promise<
  { id: string } | { id?: undefined; error: unknown; message: string }
> {
  const controller = new AbortController();
  const reason = new DOMException(
    `Redis did not answer within ${ms} ms`,
    "TimeoutError",
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => {
      controller.abort(reason); // a withdrawn message rejects right here
      resolve("late");
    }, ms);
  });
  const published = room.publish(event, { signal: controller.signal });
  published.catch(() => {}); // it may settle after the answer has gone
  try {
    const id = await Promise.race([published, late]);
    if (id !== "late") return { id };
    return {
      error: new Error(`Redis did not confirm it within ${ms} ms`),
      message:
        `Redis did not confirm the message within ${ms} ms; it may still appear`,
    };
  } catch (error) {
    return {
      error,
      message: error === reason
        ? `Redis did not answer within ${ms} ms; the message was not sent`
        : "the message was not sent",
    };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The text of a broadcast message, or why it is refused: not text/plain, not
 * UTF-8, empty, or longer than {@linkcode MAX_MESSAGE_LENGTH}. Reads at most
 * a few times that many bytes, however much the client sends.
 */
async function readMessage(
  request: Request,
): Promise<{ text: string; error?: undefined } | { error: string }> {
  const type = request.headers.get("content-type") ?? "";
  if (!/^text\/plain\s*(;|$)/i.test(type)) {
    return { error: "a message must be sent as text/plain" };
  }
  const tooLong = `a message is at most ${MAX_MESSAGE_LENGTH} characters`;
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let text = "";
  let size = 0;
  try {
    for await (const chunk of request.body ?? []) {
      size += chunk.length;
      if (size > MAX_MESSAGE_LENGTH * 4) return { error: tooLong };
      text += decoder.decode(chunk, { stream: true });
    }
    text = (text + decoder.decode()).trim();
  } catch {
    return { error: "a message must be UTF-8 text" };
  }
  if (text === "") return { error: "the message is empty" };
  if (text.length > MAX_MESSAGE_LENGTH) return { error: tooLong };
  return { text };
}
