/**
 * The demo's command line: its options, how `--help` shows them, and how
 * they are read and checked.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { LOG_LEVELS, type LogLevel } from "./http.ts";
import { MAX_TIMER_DELAY } from "../_validate.ts";

/** How to run the demo, as `--help` prints it. */
export const USAGE: string = `Usage: deno run -A demo.ts [options]

Options:
  --port <n>         port to listen on (default: $PORT or 5000)
  --host <name>      address to listen on (default: $HOST or 127.0.0.1)
  --log-level <lvl>  ${LOG_LEVELS.join(", ")} (default: info)
  --redis <url>      share the broadcast page with every demo using this
                     Redis, e.g. redis://127.0.0.1:6379 (default: none)
  --keep-alive <ms>  a comment on every stream after this many ms of
                     silence; below a proxy's idle timeout; 0: off
                     (default: 5000)
  --cert <file>      serve HTTPS, with HTTP/2 and HTTP/1.1, with this
  --key <file>       PEM certificate (chain) and its PEM private key
  -h, --help         show this help`;

/** The demo's settings, as {@linkcode parseFlags} reads them. */
export interface DemoFlags {
  /** The port to listen on; `0` lets the system choose. */
  port: number;
  /** The address to listen on. */
  host: string;
  /** The least severe level logged. */
  logLevel: LogLevel;
  /** True for `--help` or `-h`. */
  help: boolean;
  /** A Redis URL that instances share the broadcast room through. */
  redis?: string;
  /**
   * The keep-alive period of every stream, in milliseconds; the library's
   * default when absent.
   */
  keepAlive?: number;
  /** The PEM files of a certificate (chain) and its key: HTTPS, HTTP/2. */
  tls?: { cert: string; key: string };
}

/**
 * Reads the command line, falling back to `PORT` and `HOST` from `env`, then
 * to `127.0.0.1:5000` and `info`. Throws a `TypeError` naming the bad flag.
 *
 * @example
 * ```ts
 * import { parseFlags } from "../demo.ts";
 * import assert from "node:assert/strict";
 *
 * const flags = parseFlags(["--port", "8080"], () => undefined);
 * assert.equal(flags.port, 8080);
 * assert.equal(flags.host, "127.0.0.1");
 * ```
 */
export function parseFlags(
  args: string[],
  env: (name: string) => string | undefined,
): DemoFlags {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: "string" },
      host: { type: "string" },
      "log-level": { type: "string" },
      redis: { type: "string" },
      "keep-alive": { type: "string" },
      cert: { type: "string" },
      key: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const portText = values.port ?? env("PORT") ?? "5000";
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) {
    throw new TypeError(`Invalid port: ${JSON.stringify(portText)}`);
  }
  const logLevel = values["log-level"] ?? "info";
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new TypeError(`Invalid log level: ${JSON.stringify(logLevel)}`);
  }
  const { redis, cert, key } = values;
  if (redis !== undefined && !/^rediss?:\/\/[^\s]+$/.test(redis)) {
    throw new TypeError(`Invalid Redis URL: ${JSON.stringify(redis)}`);
  }
  const keepAliveText = values["keep-alive"];
  const keepAlive = keepAliveText === undefined
    ? undefined
    : Number(keepAliveText);
  if (
    keepAliveText !== undefined &&
    (!/^\d+$/.test(keepAliveText) || keepAlive! > MAX_TIMER_DELAY)
  ) {
    throw new TypeError(
      `Invalid --keep-alive: ${
        JSON.stringify(keepAliveText)
      } (milliseconds from 0, off, to ${MAX_TIMER_DELAY})`,
    );
  }
  if ((cert === undefined) !== (key === undefined)) {
    throw new TypeError(
      `--cert and --key go together: got ${
        cert === undefined ? "--key" : "--cert"
      } alone`,
    );
  }
  return {
    port,
    host: values.host ?? env("HOST") ?? "127.0.0.1",
    logLevel: logLevel as LogLevel,
    help: values.help ?? false,
    redis,
    keepAlive,
    tls: cert === undefined ? undefined : { cert, key: key! },
  };
}
