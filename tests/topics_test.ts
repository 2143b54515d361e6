// The topic index: each event reaches exactly the clients that take it (those
// of its topic, and those without topics), whatever the batch holds and
// whoever came or left before it.
import assert from "node:assert/strict";
import fc from "fast-check";
import { SseChannel } from "../mod.ts";
import { delay, listen } from "./util.ts";

const TOPICS = ["a", "b", "c"];

type Step =
  | { kind: "join"; topics: string[] | null }
  | { kind: "leave"; which: number }
  | { kind: "turn"; sends: { topic: string | null; local: boolean }[] };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant("join" as const),
    topics: fc.option(fc.subarray(TOPICS)),
  }),
  fc.record({ kind: fc.constant("leave" as const), which: fc.nat() }),
  fc.record({
    kind: fc.constant("turn" as const),
    sends: fc.array(
      fc.record({
        topic: fc.option(fc.constantFrom(...TOPICS)),
        local: fc.boolean(),
      }),
      { maxLength: 5 },
    ),
  }),
);

Deno.test("SseChannel delivers each event to exactly the clients that take it", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(step, { maxLength: 30 }), async (steps) => {
      const channel = new SseChannel({ keepAlive: 0 });
      const clients: {
        client: ReturnType<typeof listen>;
        topics: string[] | undefined;
        expected: string[];
        here: boolean;
      }[] = [];
      let n = 0;
      for (const step of steps) {
        if (step.kind === "join") {
          const topics = step.topics ?? undefined;
          const client = listen(channel, undefined, topics);
          clients.push({ client, topics, expected: [], here: true });
        } else if (step.kind === "leave") {
          const here = clients.filter((c) => c.here);
          if (here.length === 0) continue;
          const leaving = here[step.which % here.length];
          leaving.here = false;
          await leaving.client.leave();
        } else {
          for (const { topic, local } of step.sends) {
            const data = `e${n++}`;
            const options = { topic: topic ?? undefined };
            if (local) channel.sendLocal({ data }, options);
            else channel.send({ data }, options);
            for (const c of clients) {
              if (
                c.here &&
                (topic === null || !c.topics || c.topics.includes(topic))
              ) c.expected.push(data);
            }
          }
          await delay(0);
        }
      }
      channel.close();
      for (const { client, topics, expected } of clients) {
        await client.done;
        assert.deepEqual(
          client.events.map((event) => event.data),
          expected,
          `a client of ${topics ?? "every topic"}`,
        );
      }
    }),
    { numRuns: 200 },
  );
});
