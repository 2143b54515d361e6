// A client process for the disconnect tests: opens raw connections one after
// another and leaves each at a different point. Run by tests/, not a test.
//
//   deno run --allow-net tests/churn_client.ts PORT PATH CYCLES
//
// Cycle i reads (i % 5) * 300 bytes (0: leaves right after the request,
// before the head), then, for odd i, goes on reading for (i % 7) * 10 ms,
// and closes the socket without a word.
const [port, path, cycles] = Deno.args;
const request = new TextEncoder().encode(
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`,
);
const buffer = new Uint8Array(4096);
let reset = 0;
for (let i = 0; i < Number(cycles); i++) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: +port });
  try {
    await conn.write(request);
    for (let got = 0; got < (i % 5) * 300;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      got += n;
    }
    if (i % 2 === 1) {
      const stop = Date.now() + (i % 7) * 10;
      while (Date.now() < stop && await conn.read(buffer) !== null);
    }
  } catch (error) {
    // The server may reset a connection it is done with; that is its right.
    if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
    reset++;
  } finally {
    conn.close();
  }
}
console.log(JSON.stringify({ cycles: Number(cycles), reset }));
