// Internal to ssekit: what sse.ts and channel.ts share to word their errors.
// mod.ts exports none of it.

/** setTimeout and setInterval take at most this many milliseconds. */
export const MAX_TIMER_DELAY = 2_147_483_647;

/** Quotes and shortens a bad value so that a message can show it. */
export function describe(value: unknown): string {
  if (typeof value === "string") {
    const quoted = JSON.stringify(value);
    return quoted.length > 60 ? `${quoted.slice(0, 56)}..."` : quoted;
  }
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "function") return "a function";
  if (typeof value === "symbol") return value.toString();
  if (Array.isArray(value)) return "an array";
  if (value !== null && typeof value === "object") return "an object";
  return String(value);
}
