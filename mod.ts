/**
 * Server-Sent Events for any runtime with web-standard streams: Deno, Bun,
 * Node 20+ and edge workers. Spec-exact encoding, one close path, byte-based
 * backpressure, keep-alive, and events batched for busy clients.
 *
 * Return `writer.response` from a handler and write events; the writer stops
 * and aborts `writer.signal` when the client goes away.
 *
 * @example Count to three, then end the stream (save as `ticks.ts`, run `deno run -N ticks.ts`)
 * ```ts
 * import { SseWriter } from "./mod.ts";
 *
 * function handler(request: Request): Response {
 *   const writer = new SseWriter({ signal: request.signal });
 *   (async () => {
 *     for (let i = 1; i <= 3 && !writer.closed; i++) {
 *       await writer.write({ event: "tick", id: i, data: { i } });
 *       await new Promise((resolve) => setTimeout(resolve, 1000));
 *     }
 *     writer.close();
 *   })();
 *   return writer.response;
 * }
 *
 * if (import.meta.main) Deno.serve(handler);
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
  BroadcastChannelBackplane,
  type SseBackplane,
  type SseBackplaneMessage,
  SseChannel,
  type SseChannelOptions,
  type SseConnectOptions,
  type SseSendOptions,
} from "./channel.ts";
