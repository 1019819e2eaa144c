// Drives the Go sink with the official Phoenix JS client (phoenix@1.8.16):
// join, push with reply, heartbeat replies, a reconnect with rejoin after
// the sink drops the connection, and a refused bad token.
// Usage: node probe.mjs ws://127.0.0.1:PORT/socket TOKEN
import { Socket } from "phoenix";
import WebSocket from "ws";

const [endpoint, token] = process.argv.slice(2);
const fail = (msg) => { console.error("probe FAILED:", msg); process.exit(1); };
const deadline = setTimeout(() => fail(`timeout: ${JSON.stringify(state)}`), 20000);

const state = { opens: 0, joins: 0, acks: 0, heartbeatReplies: 0, badTokenOpened: false, badTokenErrors: 0 };

// Node 20 has no global WebSocket for phoenix.js: hand it ws.
const socket = new Socket(endpoint, {
  transport: WebSocket,
  params: { token },
  heartbeatIntervalMs: 100,
  reconnectAfterMs: () => 50,
  rejoinAfterMs: () => 50,
});
socket.onOpen(() => { state.opens++; });
socket.onMessage((msg) => {
  if (msg.topic === "phoenix" && msg.event === "phx_reply" && msg.payload.status === "ok") state.heartbeatReplies++;
});
socket.connect();

const channel = socket.channel("agent:probe", { host_id: "probe", agent_version: "probe", token });
channel.join()
  .receive("ok", () => { state.joins++; })
  .receive("error", (e) => fail(`join refused: ${JSON.stringify(e)}`));

let n = 0;
const pusher = setInterval(() => {
  if (channel.state !== "joined") return;
  channel.push("metric:fast", { collected_at: new Date().toISOString(), data: { n: n++ } })
    .receive("ok", () => { state.acks++; })
    .receive("error", (e) => fail(`push error: ${JSON.stringify(e)}`));
}, 20);

// A wrong token must be refused at the upgrade (HTTP 403): errors, no open.
const bad = new Socket(endpoint, { transport: WebSocket, params: { token: "wrong" }, reconnectAfterMs: () => 200 });
bad.onOpen(() => { state.badTokenOpened = true; });
bad.onError(() => { state.badTokenErrors++; });
bad.connect();

const check = setInterval(() => {
  if (state.badTokenOpened) fail("a wrong token was accepted");
  // The sink drops every connection after a few frames: two opens and two
  // joins prove reconnect and rejoin.
  if (state.opens >= 2 && state.joins >= 2 && state.acks >= 10 && state.heartbeatReplies >= 2 && state.badTokenErrors >= 1) {
    clearInterval(check); clearInterval(pusher); clearTimeout(deadline);
    socket.disconnect(); bad.disconnect();
    console.log("probe ok:", JSON.stringify(state));
    process.exit(0);
  }
}, 50);
