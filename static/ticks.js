// The tick page: opens an EventSource on /sse and shows what arrives. Every
// value from the server goes into the page as text (textContent), never as
// HTML.

const form = document.querySelector("#controls");
const startButton = document.querySelector("#start");
const stopButton = document.querySelector("#stop");
const state = document.querySelector("#state");
const detail = document.querySelector("#detail");
const progress = document.querySelector("#progress");
const progressText = document.querySelector("#progress-text");
const latest = document.querySelector("#latest");
const lastId = document.querySelector("#last-id");
const connections = document.querySelector("#connections");
const log = document.querySelector("#log");
const logEmpty = document.querySelector("#log-empty");
const curl = document.querySelector("#curl");

/** The open EventSource, or null. */
let source = null;
let opened = 0;

function streamUrl() {
  const query = new URLSearchParams({
    count: form.elements.count.value,
    intervalMs: form.elements.intervalMs.value,
  });
  return new URL(`/sse?${query}`, location.href);
}

function setState(name, text) {
  state.dataset.state = name;
  state.textContent = name;
  detail.textContent = text;
}

function setRunning(running) {
  startButton.disabled = running;
  stopButton.disabled = !running;
}

function time(date = new Date()) {
  return date.toTimeString().slice(0, 8) + "." +
    String(date.getMilliseconds()).padStart(3, "0");
}

/** Appends one line to the event log: time, event name, id and data. */
function record(name, id, data) {
  const item = document.createElement("li");
  item.dataset.event = name;
  for (
    const [part, text] of [
      ["time", time()],
      ["name", name],
      ["id", id === "" ? "–" : id],
      ["data", data],
    ]
  ) {
    const span = document.createElement("span");
    span.className = part;
    span.textContent = text;
    item.append(span);
  }
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 8;
  log.append(item);
  logEmpty.hidden = true;
  if (atBottom) log.scrollTop = log.scrollHeight;
}

/** Parses an event's JSON data; `undefined` if it is not JSON. */
function parse(event) {
  try {
    return JSON.parse(event.data);
  } catch {
    return undefined;
  }
}

function showProgress(i, total) {
  progress.max = Math.max(total, 1);
  progress.value = i;
  progressText.textContent = `${i} / ${total}`;
}

function start() {
  stop("stopped", "");
  const url = streamUrl();
  const current = new EventSource(url);
  source = current;
  setRunning(true);
  showProgress(0, Number(form.elements.count.value));
  latest.textContent = "none yet";
  lastId.textContent = "none";
  setState("connecting", `GET ${url.pathname}${url.search}`);

  const listen = (name, handle) =>
    current.addEventListener(name, (event) => {
      record(name, event.lastEventId, event.data);
      lastId.textContent = event.lastEventId || "none";
      handle(parse(event));
    });

  current.addEventListener("open", () => {
    connections.textContent = String(++opened);
    setState("open", "Connected, waiting for events.");
  });
  listen("connected", (data) => {
    setState("open", data?.message ?? "Connected.");
  });
  listen("tick", (data) => {
    if (typeof data?.i !== "number") return;
    showProgress(data.i, data.total);
    latest.textContent = `#${data.i} at ${time(new Date(data.timestamp))}`;
  });
  listen("complete", (data) => {
    // Closing here is what stops the browser from reconnecting: to an
    // EventSource, a stream that ends is a dropped connection.
    current.close();
    source = null;
    setRunning(false);
    setState("complete", data?.message ?? "Done.");
  });
  // Events without a name arrive as "message"; the demo sends none, but a
  // log of every event should show them.
  listen("message", () => {});
  current.addEventListener("error", () => {
    if (current.readyState === EventSource.CONNECTING) {
      record("error", "", "connection lost, retrying");
      setState(
        "retrying",
        "Connection lost. The browser is reconnecting and will resume after " +
          `the last event id (${lastId.textContent}).`,
      );
    } else {
      record("error", "", "stream refused, not retrying");
      source = null;
      setRunning(false);
      setState(
        "closed",
        "The server refused the stream, so the browser does not retry.",
      );
    }
  });
}

function stop(name = "stopped", text = "Stopped: the EventSource is closed.") {
  if (source === null) return;
  source.close();
  source = null;
  setRunning(false);
  setState(name, text);
}

function showCurl() {
  curl.textContent = `curl -N "${streamUrl()}"`;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  start();
});
form.addEventListener("input", showCurl);
stopButton.addEventListener("click", () => stop());
document.querySelector("#clear").addEventListener("click", () => {
  log.replaceChildren();
  logEmpty.hidden = false;
});
showCurl();
