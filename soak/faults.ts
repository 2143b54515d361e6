// Abrupt faults: servers restarted (SIGTERM and SIGKILL) while clients are
// connected, and client processes killed with SIGKILL mid-stream. Every
// client must either resume exactly where it was or be told `reset`: never
// a silent gap, never a duplicate.
import {
  atLeast,
  delay,
  equals,
  Proc,
  runClient,
  type Scenario,
  script,
} from "./_util.ts";

/** What soak/_resume_client.ts prints. */
interface Outcome {
  clients: number;
  done: number;
  connects: number;
  events: number;
  resets: number;
  resumes: number;
  withResets: number;
  violations: string[];
  violating: number;
}

/** A port that is free now, for a server that must come back on it. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
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
    violations: [...a.violations, ...b.violations].slice(0, 10),
    violating: a.violating + b.violating,
  }));
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
    await delay(800);
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

const faults: Scenario = async ({ short, log }) => {
  const started = performance.now();
  const tick = await ticks(short, log);
  const o = tick.outcome;
  return {
    scenario: "faults",
    summary:
      `${tick.clients} tick-stream clients through ${tick.restarts} restarts of the demo`,
    seconds: (performance.now() - started) / 1000,
    figures: {
      "ticks: connections (reconnects included)": String(o.connects),
      "ticks: resumed with Last-Event-ID": String(o.resumes),
      "ticks: first violations": o.violations.join("; ") || "none",
    },
    checks: [
      equals(
        "ticks: every client got every tick, once, in order",
        o.violating,
        0,
      ),
      equals("ticks: every client got `complete`", o.done, tick.clients),
      atLeast(
        "ticks: reconnects that resumed",
        o.resumes,
        tick.clients * tick.restarts,
      ),
    ],
  };
};

export default faults;
