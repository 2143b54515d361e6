/**
 * Server-Sent Events for any runtime with web-standard streams: Deno, Bun,
 * Node 20+ and edge workers. Spec-exact encoding, one close path, byte-based
 * backpressure, keep-alive, and events batched for busy clients.
 *
 * Return `writer.response` from a handler and write events; the writer stops
 * and aborts `writer.signal` when the client goes away.
 *
 * @example A tick a second until the client leaves
 * ```ts
 * import { SseWriter } from "./mod.ts";
 *
 * // Any web-standard server can serve this handler (see the README).
 * function handler(request: Request): Response {
 *   const writer = new SseWriter({ signal: request.signal });
 *   let i = 0;
 *   const timer = setInterval(() => {
 *     writer.write({ event: "tick", id: ++i, data: { i } });
 *   }, 1000);
 *   writer.signal.addEventListener("abort", () => clearInterval(timer));
 *   return writer.response;
 * }
 *
 * // A client reads the first event, then leaves: the timer stops.
 * const reader = handler(new Request("http://localhost/")).body!.getReader();
 * const { value } = await reader.read();
 * new TextDecoder().decode(value); // 'event: tick\nid: 1\ndata: {"i":1}\n\n'
 * await reader.cancel();
 * ```
 *
 * @module
 */

export {
  encodeComment,
  encodeEvent,
  lastEventId,
  SseClosedError,
  type SseEvent,
  sseResponse,
  type SseResponseOptions,
  SseWriter,
  type SseWriterOptions,
} from "./sse.ts";
export {
  SseChannel,
  type SseChannelOptions,
  type SseChannelStats,
  type SseConnectOptions,
  type SsePublishOptions,
  type SseSendOptions,
} from "./channel.ts";
export {
  BroadcastChannelBackplane,
  type SseBackplane,
  type SseBackplaneMessage,
  type SseOrderedBackplane,
  type SseOrderedEntry,
  type SseOrderedPublishOptions,
  type SseOrderedReceiver,
} from "./backplane.ts";
export {
  parseEvents,
  SseClient,
  type SseClientBody,
  type SseClientInit,
  type SseClientState,
  type SseMessage,
  type SseParseOptions,
  SseParseStream,
  SseResponseError,
} from "./client.ts";
