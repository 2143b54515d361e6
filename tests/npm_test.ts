// The npm package on the runtimes the README names: packed by `npm pack`,
// installed into a scratch project, served by the README's recipes under
// Node (srvx, @hono/node-server) and Bun, and type-checked by `tsc`.
import assert from "node:assert/strict";
import { encodeEvent } from "../mod.ts";
import { StreamReader } from "./stream_reader.ts";
import { type Project, scratchProject, startRecipe } from "./npm_util.ts";
import { NODE_MAJOR, version } from "./runtime_util.ts";
import { delay, needs } from "./util.ts";

const RUNTIMES = needs(
  "the npm package test",
  { "node 20+": NODE_MAJOR >= 20, bun: await version("bun") !== "" },
  "put Node 20+ on PATH, and npm i -g bun (.ci/run does)",
);

/** A user's TypeScript file: it must type-check, and a misuse must not. */
const CHECKED =
  `import { SseChannel, type SseEvent, SseWriter } from "@ssekit/sse";
import type { SseBackplane } from "@ssekit/sse/backplane";
import { SseClient } from "@ssekit/sse/client";
import { RedisBackplane } from "@ssekit/sse/redis";

const writer = new SseWriter({ keepAlive: 5000 });
const event: SseEvent = { event: "tick", id: 1, data: { i: 1 } };
await writer.write(event);
const response: Response = writer.response;
const channel = new SseChannel();
const id: string = channel.send({ data: "hi" }, { topic: "news" });
const backplane: SseBackplane | undefined = undefined;
const redis: typeof RedisBackplane = RedisBackplane;
const client = new SseClient("http://localhost/", { reconnect: "never" });
client.close();
// @ts-expect-error: keepAlive is a number of milliseconds
new SseWriter({ keepAlive: "5s" });
// @ts-expect-error: send() returns the id, a string
const wrong: number = channel.send({ data: 1 });
console.log(response, id, backplane, redis, wrong);
`;

const TSCONFIG = {
  compilerOptions: {
    module: "nodenext",
    moduleResolution: "nodenext",
    target: "ES2022",
    lib: ["ES2022", "DOM"],
    strict: true,
    noEmit: true,
    types: [],
  },
  files: ["check.ts"],
};

/** A recipe serves ticks, a broadcast, and notices a client that leaves. */
async function servesAsDocumented(url: URL): Promise<void> {
  const ticks = await fetch(new URL("/ticks?count=3&intervalMs=10", url));
  assert.equal(
    ticks.headers.get("content-type"),
    "text/event-stream; charset=utf-8",
  );
  assert.equal(
    await ticks.text(),
    [1, 2, 3].map((i) => encodeEvent({ event: "tick", id: i, data: { i } }))
      .join(""),
  );

  const clients = await Promise.all(
    [0, 1, 2].map(() => StreamReader.fetch(new URL("/room", url))),
  );
  for (const client of clients) await client.until("\n\n"); // its position
  for (const data of ["one", "two"]) {
    await (await fetch(new URL(`/send?data=${data}`, url))).body?.cancel();
  }
  for (const client of clients) {
    await client.until("data: two\n\n");
    assert.match(
      client.text,
      /^id: (\w{6})-0\n\nid: \1-1\ndata: one\n\nid: \1-2\ndata: two\n\n$/,
    );
    await client.cancel();
  }

  const stats = async () =>
    await (await fetch(new URL("/stats", url))).json() as {
      closed: number;
      clients: number;
    };
  const before = (await stats()).closed;
  const leaving = await StreamReader.fetch(
    new URL("/ticks?count=1000&intervalMs=20", url),
  );
  await leaving.until("id: 1\n");
  await leaving.cancel();
  // The server learns of it: the writer's signal aborts, the room empties.
  for (let waited = 0; waited < 5000; waited += 50) {
    const now = await stats();
    if (now.closed === before + 1 && now.clients === 0) return;
    await delay(50);
  }
  assert.deepEqual(await stats(), { closed: before + 1, clients: 0 });
}

/** Reads a stream until it ends (or fails, when a server cuts it). */
async function whenEnded(reader: StreamReader): Promise<void> {
  try {
    await reader.rest();
  } catch {
    // cut: ended all the same
  }
}

Deno.test({
  name: "The npm package serves streams on Node and Bun as the README says",
  ignore: RUNTIMES.ignore,
  async fn(t) {
    RUNTIMES.check();
    let project: Project | undefined;
    try {
      project = await scratchProject();
      const { run } = project;
      await t.step("its types check with tsc, and catch a misuse", async () => {
        await Deno.writeTextFile(`${project!.dir}/check.ts`, CHECKED);
        await Deno.writeTextFile(
          `${project!.dir}/tsconfig.json`,
          JSON.stringify(TSCONFIG),
        );
        await run("node", ["node_modules/typescript/bin/tsc", "-p", "."]);
      });
      for (
        const [runtime, adapter] of [
          ["node", "srvx"],
          ["node", "hono"],
          ["bun", "bun"],
        ] as const
      ) {
        await t.step(`${runtime} with ${adapter}`, async () => {
          const server = await startRecipe(project!, runtime, adapter);
          try {
            await servesAsDocumented(server.url);
          } finally {
            await server.stop();
          }
        });
      }
      await t.step(
        "bun: a quiet stream outlives Bun's idle timeout, with the default keep-alive only",
        async () => {
          const server = await startRecipe(project!, "bun", "bun");
          try {
            const quiet = await StreamReader.fetch(
              new URL("/idle", server.url),
            );
            // The same without keep-alive: Bun cuts it (the trap is real).
            const bare = await StreamReader.fetch(
              new URL("/idle?keepAlive=0", server.url),
            );
            const start = performance.now();
            let quietEnded = false;
            const quietEnd = whenEnded(quiet).then(() => quietEnded = true);
            await whenEnded(bare);
            assert.ok(
              performance.now() - start < 20_000,
              "Bun cut the bare one",
            );
            // Bun cuts a quiet stream 9.4–12.1 s after its last byte (README).
            await delay(Math.max(0, 13_000 - (performance.now() - start)));
            assert.equal(
              quietEnded,
              false,
              "the stream with keep-alive is open",
            );
            assert.match(quiet.text, /^: quiet from now on\n(:\n){2,}$/);
            await quiet.cancel();
            await quietEnd;
          } finally {
            await server.stop();
          }
        },
      );
    } finally {
      await project?.remove();
    }
  },
});
