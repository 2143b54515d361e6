// Abrupt faults: servers restarted (SIGTERM and SIGKILL) while clients are
// connected, and client processes killed with SIGKILL mid-stream. Every
// client must either resume exactly where it was or be told `reset`: never
// a silent gap, never a duplicate.
import { createClient } from "redis";
import {
  type Check,
  delay,
  equals,
  freePort,
  Proc,
  runClient,
  type Scenario,
  script,
} from "./_util.ts";
import { ChannelServer } from "./channel_server.ts";
import { Redis } from "../tests/redis_util.ts";
import { Client } from "./_client.ts";

/** What soak/_resume_client.ts prints. */
interface Outcome {
  clients: number;
  done: number;
  connects: number;
  events: number;
  resets: number;
  resumes: number;
  withResets: number;
  /** Clients that reconnected with a Last-Event-ID at least once. */
  withResumes: number;
  violations: string[];
  violating: number;
  /** kind "channel": per client, the ids it got, in runs resets start. */
  runs: string[][][];
}

/** Starts the demo on `port` and waits until it listens. */
async function startDemo(port: number): Promise<Proc> {
  const demo = new Proc(
    script("../demo.ts", "--port", String(port), "--log-level", "warn"),
  );
  await demo.waitFor(/^Press Ctrl-C to stop\./);
  return demo;
}

/** Runs `clients` resume clients in processes of at most 500 each. */
async function resumeClients(
  job: { url: string; kind: "ticks" | "channel"; deadlineMs: number },
  clients: number,
): Promise<Outcome> {
  const jobs: Promise<Outcome>[] = [];
  for (let left = clients; left > 0; left -= 500) {
    const n = Math.min(500, left);
    jobs.push(runClient<Outcome>(
      script(
        "_resume_client.ts",
        JSON.stringify({ ...job, clients: n, retryMs: 100 }),
      ),
    ));
  }
  const outcomes = await Promise.all(jobs);
  return outcomes.reduce((a, b) => ({
    clients: a.clients + b.clients,
    done: a.done + b.done,
    connects: a.connects + b.connects,
    events: a.events + b.events,
    resets: a.resets + b.resets,
    resumes: a.resumes + b.resumes,
    withResets: a.withResets + b.withResets,
    withResumes: a.withResumes + b.withResumes,
    violations: [...a.violations, ...b.violations].slice(0, 10),
    violating: a.violating + b.violating,
    runs: [...a.runs, ...b.runs],
  }));
}

/** Waits (at most `ms`) until the demo's /metrics counts `n` open tick streams. */
async function streamsOpen(port: number, n: number, ms: number) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`)
      .then((response) => response.text()).catch(() => "");
    const open = Number(
      metrics.match(/^ssekit_demo_tick_streams_open (\d+)$/m)?.[1] ?? 0,
    );
    if (open >= n) return;
    await delay(50);
  }
}

/** The demo's tick stream, its server killed and restarted under load. */
async function ticks(
  short: boolean,
  log: (line: string) => void,
): Promise<{ outcome: Outcome; restarts: number; clients: number }> {
  const port = freePort();
  const clients = short ? 200 : 2000;
  const count = short ? 60 : 200;
  let demo = await startDemo(port);
  const running = resumeClients({
    url: `http://127.0.0.1:${port}/sse?count=${count}&intervalMs=50`,
    kind: "ticks",
    deadlineMs: short ? 30_000 : 120_000,
  }, clients);
  const signals: Deno.Signal[] = short
    ? ["SIGTERM", "SIGKILL"]
    : ["SIGTERM", "SIGKILL", "SIGTERM", "SIGKILL"];
  for (const signal of signals) {
    // Every client is connected and has ticks (so an id) before the cut, or
    // one that came late would have nothing to resume with.
    await streamsOpen(port, clients, 20_000);
    await delay(300);
    log(`ticks: ${signal} to the demo`);
    demo.kill(signal);
    await demo.exited;
    demo = await startDemo(port);
  }
  const outcome = await running;
  demo.kill("SIGINT");
  await demo.exited;
  return { outcome, restarts: signals.length, clients };
}

/**
 * Runs whose ids are not each the next of the one before in `order` (the
 * channel's order of ids); the first few, described.
 */
function broken(runs: string[][][], next: (id: string) => string | undefined) {
  const found: string[] = [];
  let count = 0;
  for (const client of runs) {
    for (const run of client) {
      for (let i = 1; i < run.length; i++) {
        if (next(run[i - 1]) !== run[i]) {
          count++;
          if (found.length < 5) found.push(`${run[i]} after ${run[i - 1]}`);
          break;
        }
      }
    }
  }
  return { count, found };
}

interface ChannelRun {
  outcome: Outcome;
  clients: number;
  restarts: number;
  /** Clients counted by the last server once the killed process was gone. */
  sizeAfterKill: number;
  exitCode: number | undefined;
  /** The id that follows each id in the channel's order. */
  next: (id: string) => string | undefined;
  problems: string[];
}

/**
 * A channel server restarted (SIGTERM, then SIGKILL) under resume clients
 * while it sends an event every 20 ms, and a client process SIGKILLed
 * mid-stream. Without `redis`, each restart is a new epoch: every client
 * must be reset. On Redis, the order outlives the server: every client must
 * resume exactly.
 */
async function channelRestarts(
  short: boolean,
  log: (line: string) => void,
  redis?: { url: string; stream: string },
): Promise<ChannelRun> {
  const port = freePort();
  const flags = ["--port", String(port), "--tick", "20", "--keep-alive", "0"];
  if (redis) flags.push("--redis", redis.url, "--stream", redis.stream);
  const clients = short ? 200 : 2000;
  const what = redis ? "on Redis" : "alone";
  let server = await ChannelServer.start(flags);
  const running = resumeClients({
    url: `http://127.0.0.1:${port}/events`,
    kind: "channel",
    deadlineMs: short ? 30_000 : 120_000,
  }, clients);
  const victims = new Client("hold", port, [
    "--conns",
    "50",
    "--first",
    "1",
    "--last",
    "1000000000",
    "--deadline",
    "60000",
  ]);
  // Every client connected, then one process of them killed mid-stream:
  // the server must let go of exactly its 50 clients.
  await server.until((stats) => stats.size >= clients + 50, 20_000);
  await delay(300);
  log(`channel ${what}: SIGKILL to a process of 50 clients`);
  victims.proc.kill("SIGKILL");
  await victims.proc.exited;
  const { stats } = await server.until((s) => s.size <= clients, 5000);
  const sizeAfterKill = stats.size;
  const signals: Deno.Signal[] = ["SIGTERM", "SIGKILL"];
  for (const signal of signals) {
    await delay(800);
    log(`channel ${what}: ${signal} to the server`);
    server.proc.kill(signal);
    await server.proc.exited;
    server = await ChannelServer.start(flags);
  }
  await server.until((stats) => stats.size >= clients, 20_000);
  await delay(300);
  await fetch(new URL("send?final", server.origin), { method: "POST" })
    .then((response) => response.text());
  const outcome = await running;
  const problems = server.proc.lines.filter((line) =>
    /uncaught|error/i.test(line)
  );
  let next: (id: string) => string | undefined;
  if (redis) {
    const client = await createClient({ url: redis.url }).connect();
    const entries = await client.sendCommand(
      ["XRANGE", redis.stream, "-", "+"],
    ) as [string, string[]][];
    client.destroy();
    const after = new Map<string, string>();
    for (let i = 1; i < entries.length; i++) {
      after.set(entries[i - 1][0], entries[i][0]);
    }
    next = (id) => after.get(id);
  } else {
    next = (id) => {
      const [, epoch, n] = /^([0-9a-z]{6})-(\d+)$/.exec(id) ?? [];
      return epoch && `${epoch}-${Number(n) + 1}`;
    };
  }
  const { code } = await server.exit();
  return {
    outcome,
    clients,
    restarts: signals.length,
    sizeAfterKill,
    exitCode: code,
    next,
    problems,
  };
}

/** The checks of one channel run. */
function channelChecks(name: string, run: ChannelRun, redis: boolean) {
  const o = run.outcome;
  const gaps = broken(o.runs, run.next);
  const checks: Check[] = [
    equals(`${name}: every client got the final event`, o.done, run.clients),
    equals(`${name}: runs with a gap or a duplicate`, gaps.count, 0),
    redis
      ? equals(
        `${name}: clients reset (the order outlives the server)`,
        o.withResets,
        0,
      )
      // A new epoch in a run without a reset before it is a gap, above;
      // every client ends on a server newer than its first.
      : equals(
        `${name}: clients reset by a new epoch`,
        o.withResets,
        run.clients,
      ),
    equals(
      `${name}: clients counted after a client process was SIGKILLed`,
      run.sizeAfterKill,
      run.clients,
    ),
    equals(
      `${name}: the last server exits by itself after /exit`,
      run.exitCode ?? "did not end",
      0,
    ),
    equals(
      `${name}: server log lines with "error" or "uncaught"`,
      run.problems.length,
      0,
    ),
  ];
  return { checks, found: gaps.found };
}

const faults: Scenario = async ({ short, log }) => {
  const started = performance.now();
  const tick = await ticks(short, log);
  const alone = await channelRestarts(short, log);
  const redis = new Redis();
  await redis.start();
  let onRedis: ChannelRun;
  try {
    onRedis = await channelRestarts(short, log, {
      url: redis.url,
      stream: "soak-faults",
    });
  } finally {
    await redis.stop();
  }
  const o = tick.outcome;
  const aloneChecks = channelChecks("channel", alone, false);
  const redisChecks = channelChecks("channel on Redis", onRedis, true);
  return {
    scenario: "faults",
    summary: `${tick.clients} tick-stream clients through ${tick.restarts} ` +
      `restarts of the demo; ${alone.clients} channel clients through ` +
      `${alone.restarts} restarts of a channel server, alone and on Redis`,
    seconds: (performance.now() - started) / 1000,
    figures: {
      "ticks: connections (reconnects included)": String(o.connects),
      "ticks: resumed with Last-Event-ID": String(o.resumes),
      "ticks: first violations": o.violations.join("; ") || "none",
      "channel: events received, resets":
        `${alone.outcome.events} events, ${alone.outcome.resets} resets`,
      "channel on Redis: events received, resumes":
        `${onRedis.outcome.events} events, ${onRedis.outcome.resumes} resumes`,
      "first gaps": [...aloneChecks.found, ...redisChecks.found].join("; ") ||
        "none",
    },
    checks: [
      equals(
        "ticks: every client got every tick, once, in order",
        o.violating,
        0,
      ),
      equals("ticks: every client got `complete`", o.done, tick.clients),
      equals(
        "ticks: clients that reconnected with Last-Event-ID",
        o.withResumes,
        tick.clients,
      ),
      ...aloneChecks.checks,
      ...redisChecks.checks,
    ],
  };
};

export default faults;
