// Slowloris: clients that send a request head one byte at a time, slowly.
// Deno's HTTP server has no timeout for receiving request headers, so each
// such client holds a socket (and a connection of the demo) for as long as
// it likes. This measures it against the real demo process, and against
// nginx in front of another demo, whose `client_header_timeout` closes them
// before the demo ever sees them. Both run at once, to keep the run short.

import {
  atLeast,
  atMost,
  type Check,
  delay,
  equals,
  format,
  type Report,
  type Scenario,
} from "./_util.ts";
import { type Demo, startDemo } from "./_fuzz_http.ts";
import { Rng, soakSeed } from "./_fuzz_rng.ts";
import {
  found as haveNginx,
  NGINX,
  type Nginx,
  startNginx,
} from "../tests/nginx_util.ts";

/** nginx's `client_header_timeout`, in seconds. */
const HEADER_TIMEOUT_S = 5;
/** A slow client sends one header byte about this often. */
const BYTE_EVERY_MS = 3000;
/** Sockets opened at once, so as not to overflow a listen backlog. */
const CONNECT_BATCH = 100;

const HEAD = new TextEncoder().encode("GET /sse HTTP/1.1\r\nHost: x\r\n");
/** The header the slow clients never finish: `X-Slow: aaaa…`. */
const TRICKLE = new TextEncoder().encode("X-Slow: " + "a".repeat(1000));

/** One slow client. */
interface Slow {
  conn: Deno.TcpConn;
  opened: number;
  /** When the server closed it (ms after `opened`), or undefined. */
  closedAfter?: number;
  /** Whether the server answered something before closing. */
  answered: boolean;
  sent: number;
  due: number;
}

/** Holds `count` slow clients against `port`; `stop()` ends them all. */
class SlowClients {
  readonly clients: Slow[] = [];
  failedToOpen = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #stopped = false;

  constructor(readonly port: number, readonly rng: Rng) {}

  /** Opens the sockets and sends each its first lines. */
  async open(count: number): Promise<void> {
    for (let i = 0; i < count; i += CONNECT_BATCH) {
      const batch = Math.min(CONNECT_BATCH, count - i);
      await Promise.all(
        Array.from({ length: batch }, () => this.#openOne()),
      );
    }
    // One tick serves every client: a byte to each that is due.
    this.#timer = setInterval(() => this.#trickle(), 200);
  }

  async #openOne(): Promise<void> {
    let conn: Deno.TcpConn;
    try {
      conn = await Deno.connect({ hostname: "127.0.0.1", port: this.port });
      await conn.write(HEAD);
    } catch {
      this.failedToOpen++;
      return;
    }
    const now = performance.now();
    const client: Slow = {
      conn,
      opened: now,
      answered: false,
      sent: 0,
      due: now + this.rng.range(0, BYTE_EVERY_MS),
    };
    this.clients.push(client);
    this.#watch(client);
  }

  /** Notes when the server closes the socket (EOF or reset). */
  async #watch(client: Slow): Promise<void> {
    const buffer = new Uint8Array(4096);
    try {
      for (;;) {
        const n = await client.conn.read(buffer);
        if (n === null) break;
        client.answered = true;
      }
    } catch {
      // Reset by the server, or closed by us.
    }
    if (!this.#stopped) {
      client.closedAfter = performance.now() - client.opened;
    }
  }

  #trickle(): void {
    const now = performance.now();
    for (const client of this.clients) {
      if (client.closedAfter !== undefined || client.due > now) continue;
      client.due = now + BYTE_EVERY_MS * (0.8 + 0.4 * this.rng.float());
      const byte = TRICKLE.subarray(
        client.sent % TRICKLE.length,
        client.sent % TRICKLE.length + 1,
      );
      client.sent++;
      client.conn.write(byte).catch(() => {});
    }
  }

  /** How many the server has closed so far. */
  get closed(): number {
    return this.clients.filter((c) => c.closedAfter !== undefined).length;
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    for (const client of this.clients) {
      try {
        client.conn.close();
      } catch {
        // The server closed it already.
      }
    }
  }
}

/** Established TCP connections whose local port is `port` (all processes). */
async function connectionsTo(port: number): Promise<number> {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  let n = 0;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 4) continue;
      if (fields[1].endsWith(`:${hex}`) && fields[3] === "01") n++;
    }
  }
  return n;
}

/** A normal `GET /sse?count=3&intervalMs=10` through `port`, in full. */
async function normalRequest(port: number): Promise<string> {
  try {
    const response = await fetch(
      `http://127.0.0.1:${port}/sse?count=3&intervalMs=10`,
      { signal: AbortSignal.timeout(10_000) },
    );
    const text = await response.text();
    if (response.status !== 200) return `status ${response.status}`;
    const ticks = text.match(/^event: tick$/gm)?.length ?? 0;
    return ticks === 3 && /event: complete\n/.test(text)
      ? "ok"
      : `${ticks} ticks, complete: ${/event: complete/.test(text)}`;
  } catch (error) {
    return String(error);
  }
}

/** nginx in front of `upstream`, with the header timeout measured here. */
function nginxInFront(upstream: number): Promise<Nginx> {
  return startNginx({
    main: "worker_rlimit_nofile 20000;",
    connections: 10_000,
    http: (port) =>
      `  client_header_timeout ${HEADER_TIMEOUT_S}s;
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://127.0.0.1:${upstream};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 1h;
    }
  }`,
  });
}

/** Seconds, for figures. */
function seconds(ms: number | undefined): string {
  return ms === undefined ? "-" : `${(ms / 1000).toFixed(1)} s`;
}

const slowloris: Scenario = async ({ short, log }) => {
  const started = performance.now();
  const seed = soakSeed();
  log(`slowloris: seed ${seed} (SOAK_SEED=${seed} to repeat)`);
  const sockets = short ? 300 : 2000;
  const holdMs = (short ? 12 : 60) * 1000;
  const rng = new Rng(seed);

  const direct = await startDemo();
  let behind: Demo | undefined;
  let nginx: Nginx | undefined;
  try {
    if (haveNginx) {
      behind = await startDemo();
      nginx = await nginxInFront(behind.port);
    }

    const toDemo = new SlowClients(direct.port, rng);
    const toNginx = nginx ? new SlowClients(nginx.port, rng) : undefined;
    await Promise.all([toDemo.open(sockets), toNginx?.open(sockets)]);
    const holdStart = performance.now();
    log(
      `slowloris: ${toDemo.clients.length} slow sockets to the demo${
        toNginx ? `, ${toNginx.clients.length} to nginx` : ""
      }; holding ${holdMs / 1000} s`,
    );

    // Sampled every second: what each demo holds, as the kernel counts it.
    let maxDirect = 0;
    let maxBehind = 0;
    let normalDirect = "not run";
    let normalNginx = "not run";
    const half = holdStart + holdMs / 2;
    while (performance.now() - holdStart < holdMs) {
      maxDirect = Math.max(maxDirect, await connectionsTo(direct.port));
      if (behind) {
        maxBehind = Math.max(maxBehind, await connectionsTo(behind.port));
      }
      if (normalDirect === "not run" && performance.now() >= half) {
        // While the slow clients hold their sockets, others are served.
        [normalDirect, normalNginx] = await Promise.all([
          normalRequest(direct.port),
          nginx ? normalRequest(nginx.port) : "no nginx",
        ]);
      }
      await delay(1000);
    }
    const closedDirect = toDemo.closed;
    const closedNginx = toNginx?.closed ?? 0;
    const held = toDemo.clients.length;
    const heldNginx = toNginx?.clients.length ?? 0;
    const times = (toNginx?.clients ?? []).map((c) => c.closedAfter)
      .filter((t): t is number => t !== undefined).sort((a, b) => a - b);
    const answered = (toNginx?.clients ?? []).filter((c) => c.answered).length;
    const bytesSent = toDemo.clients.reduce((n, c) => n + c.sent, 0);
    toDemo.stop();
    toNginx?.stop();
    const alive = direct.alive();

    const figures: Record<string, string> = {
      "seed": `${seed}`,
      "slow sockets to the demo": `${
        format(held)
      } opened (${toDemo.failedToOpen} failed), held ${
        holdMs / 1000
      } s, one header byte every ~${BYTE_EVERY_MS / 1000} s (${
        format(bytesSent)
      } bytes in all)`,
      "closed by the demo within the hold (Deno has no header timeout)": `${
        format(closedDirect)
      } of ${format(held)}`,
      "connections the demo held at most (kernel count)": format(maxDirect),
      "normal request to the demo meanwhile": normalDirect,
    };
    const checks: Check[] = [
      atLeast("slow sockets opened to the demo", held, sockets),
      equals(
        "a normal request to the demo is served while they are held",
        normalDirect,
        "ok",
      ),
      equals("the demo still runs", alive, true),
    ];
    if (nginx && toNginx && behind) {
      const share = heldNginx === 0 ? 0 : closedNginx / heldNginx * 100;
      figures["slow sockets to nginx"] = `${
        format(heldNginx)
      } opened (${toNginx.failedToOpen} failed), client_header_timeout ${HEADER_TIMEOUT_S}s`;
      figures["closed by nginx within the hold"] = `${format(closedNginx)} of ${
        format(heldNginx)
      } (${share.toFixed(1)} %; ${
        format(answered)
      } with a response first), after ${seconds(times[0])} to ${
        seconds(times.at(-1))
      } (median ${seconds(times[Math.floor(times.length / 2)])})`;
      figures["connections the demo behind nginx held at most"] = format(
        maxBehind,
      );
      figures["normal request through nginx meanwhile"] = normalNginx;
      checks.push(
        atLeast(
          "slow sockets closed by nginx within the hold",
          share,
          95,
          " %",
        ),
        atMost(
          "connections of the demo behind nginx (the normal request's only)",
          maxBehind,
          1,
        ),
        equals(
          "a normal request through nginx is served meanwhile",
          normalNginx,
          "ok",
        ),
      );
      const errors = (await nginx.errors()).filter((line) =>
        / \[(error|crit|alert|emerg)\] /.test(line)
      );
      if (errors.length > 0) {
        figures["nginx errors"] = errors.slice(0, 3).join(" | ");
      }
    } else if (Deno.env.get("CI") === "true") {
      checks.push({
        name: "nginx is installed, to measure a proxy's header timeout",
        value: `no ${NGINX}`,
        limit: "installed (apt-get install nginx)",
        pass: false,
      });
    } else {
      figures["nginx"] =
        `skipped: no ${NGINX} (apt-get install nginx to measure it; required under CI=true)`;
    }
    return {
      scenario: "slowloris",
      summary: `${format(sockets)} slow-header sockets held ${
        holdMs / 1000
      } s against the demo${
        nginx ? ", and as many against nginx in front of another" : ""
      }`,
      seconds: (performance.now() - started) / 1000,
      figures,
      checks,
    } satisfies Report;
  } finally {
    await nginx?.stop();
    direct.proc.kill("SIGINT");
    behind?.proc.kill("SIGINT");
    await Promise.race([
      Promise.all([direct.proc.exited, behind?.proc.exited]),
      delay(5000),
    ]);
    await direct.proc.stop();
    await behind?.proc.stop();
  }
};

export default slowloris;
