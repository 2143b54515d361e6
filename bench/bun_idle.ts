// How long Bun keeps a quiet stream open: the measurement behind ssekit's
// default keep-alive (README, "Install"). `deno run -A bench/bun_idle.ts`
//
// The packed npm package is served by the README's Bun recipe; streams with
// keep-alive off, opened a little apart, each get one comment and then
// nothing, and the time from that byte to Bun closing the stream is taken.
import { median } from "./_stats.ts";
import { scratchProject, startRecipe } from "../tests/npm_util.ts";
import { version } from "../tests/runtime_util.ts";
import { StreamReader } from "../tests/stream_reader.ts";

const STREAMS = 8;

const project = await scratchProject();
const server = await startRecipe(project, "bun", "bun");
try {
  const closes = await Promise.all(
    Array.from({ length: STREAMS }, async (_, i) => {
      await new Promise((resolve) => setTimeout(resolve, i * 370));
      const stream = await StreamReader.fetch(
        new URL("/idle?keepAlive=0", server.url),
      );
      await stream.until("\n");
      const quietSince = performance.now();
      await stream.rest().catch(() => {}); // cut, or ended: the same here
      return (performance.now() - quietSince) / 1000;
    }),
  );
  const seconds = (s: number) => `${s.toFixed(1)} s`;
  console.log(JSON.stringify({ bun: await version("bun"), closes }));
  console.log(
    `Bun closed ${STREAMS} quiet streams ${seconds(Math.min(...closes))}–${
      seconds(Math.max(...closes))
    } after their last byte (median ${seconds(median(closes))}).`,
  );
} finally {
  await server.stop();
  await project.remove();
}
