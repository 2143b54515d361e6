// The module bundled with `deno bundle` streams the same bytes under Node as
// under Deno: proof that the library uses web-standard APIs only.
import assert from "node:assert/strict";
import { encodeComment, encodeEvent } from "../mod.ts";

const node = await new Deno.Command("node", { args: ["--version"] }).output()
  .then((out) => out.success ? new TextDecoder().decode(out.stdout).trim() : "")
  .catch(() => "");
const major = Number(node.match(/^v(\d+)\./)?.[1] ?? 0);
const inCi = Deno.env.get("CI") === "true";
if (major < 20 && !inCi) {
  console.warn(
    `Skipping the Node test: it needs node 20+ on PATH (found ${
      node || "none"
    }).`,
  );
}

async function run(command: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(command, { args, stderr: "inherit" })
    .output();
  assert.ok(out.success, `${command} ${args.join(" ")} failed`);
  return new TextDecoder().decode(out.stdout);
}

Deno.test({
  name: "The bundled module streams the same bytes under Node and Deno",
  ignore: major < 20 && !inCi,
  async fn() {
    assert.ok(
      major >= 20,
      `CI needs node 20+ on PATH, found ${node || "none"}`,
    );
    const dir = await Deno.makeTempDir();
    try {
      const bundle = `${dir}/ssekit.js`;
      await run(Deno.execPath(), [
        "bundle",
        "--quiet",
        "--platform",
        "browser",
        "-o",
        bundle,
        new URL("../mod.ts", import.meta.url).pathname,
      ]);
      const driver = new URL("node_driver.mjs", import.meta.url).pathname;
      const underNode = JSON.parse(await run("node", [driver, bundle]));
      const underDeno = JSON.parse(
        await run(Deno.execPath(), ["run", "-A", driver, bundle]),
      );
      assert.deepEqual(underNode, underDeno);
      assert.deepEqual(underNode, {
        headers: [
          ["cache-control", "no-cache, no-transform"],
          ["content-type", "text/event-stream; charset=utf-8"],
          ["x-accel-buffering", "no"],
        ],
        text: encodeEvent({
          event: "hi",
          id: 1,
          retry: 2000,
          data: " é\r\n😀",
        }) +
          encodeComment("note") +
          Array.from(
            { length: 10 },
            (_, i) => encodeEvent({ id: i, data: { i } }),
          )
            .join("") +
          ":\n",
        aborted: true,
        after: "SseClosedError",
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
