// The broadcast page: one EventSource on /broadcast/events shows every
// message and the number of connected clients; the form POSTs a message.
// Everything the server sends is rendered as text, never as HTML.

const $ = (id) => document.getElementById(id);
const state = $("state");
const detail = $("detail");
const log = $("log");

function setState(name, text) {
  state.dataset.state = name;
  state.textContent = name;
  detail.textContent = text;
}

function addMessage({ text, at }, id) {
  const item = document.createElement("li");
  item.dataset.event = "message";
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = new Date(at).toLocaleTimeString();
  const body = document.createElement("span");
  body.className = "data";
  body.textContent = text;
  const tag = document.createElement("span");
  tag.className = "id";
  tag.textContent = `#${id}`;
  item.append(time, body, tag);
  log.prepend(item);
  $("log-empty").hidden = true;
}

// Whether this page's server reaches its backplane (Redis); null without one.
let backplane = null;

const BACKPLANE = {
  connected: ["connected", "open", "Receiving messages."],
  connecting: [
    "waiting",
    "degraded",
    "This server is waiting for Redis: messages from other servers will " +
    "arrive once it is there, and sending fails until then.",
  ],
  unreachable: [
    "unreachable",
    "degraded",
    "This server cannot reach Redis: messages from other servers are " +
    "delayed, and sending fails until it is back.",
  ],
};

function showOpen() {
  const [, name, text] = BACKPLANE[backplane ?? "connected"];
  setState(name, text);
}

const source = new EventSource("/broadcast/events");
source.addEventListener("open", showOpen);
source.addEventListener("message", (event) => {
  addMessage(JSON.parse(event.data), event.lastEventId);
  $("last-id").textContent = event.lastEventId;
});
source.addEventListener("clients", (event) => {
  $("clients").textContent = JSON.parse(event.data).count;
});
source.addEventListener("backplane", (event) => {
  const { state } = JSON.parse(event.data);
  if (!Object.hasOwn(BACKPLANE, state)) return;
  backplane = state;
  $("backplane").textContent = BACKPLANE[state][0];
  $("backplane-row").hidden = false;
  if (source.readyState === EventSource.OPEN) showOpen();
});
source.addEventListener("reset", (event) => {
  // The server cannot replay what this page missed: say so, and why, rather
  // than pretend. Only a reset shows this.
  const notice = $("notice");
  notice.textContent = `Some messages may be missing: ${
    JSON.parse(event.data).reason
  }.`;
  notice.hidden = false;
});
source.addEventListener("error", () => {
  if (source.readyState === EventSource.CONNECTING) {
    setState("retrying", "Connection lost; the browser is reconnecting.");
  } else {
    setState("closed", "The server refused the stream.");
  }
});

$("compose").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = event.target.elements.text;
  const response = await fetch("/broadcast/messages", {
    method: "POST",
    headers: { "content-type": "text/plain;charset=utf-8" },
    body: input.value,
  });
  if (response.ok) {
    input.value = "";
  } else {
    detail.textContent = await response.text();
  }
  input.focus();
});

$("curl").textContent =
  `curl -d 'hello' -H 'content-type: text/plain' ${new URL(
    "/broadcast/messages",
    location.href,
  )}`;
