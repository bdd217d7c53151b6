// A webhook endpoint that verifies every request with the official livekit-server-sdk
// WebhookReceiver and records what it accepted.
//
//   API_KEY=... API_SECRET=... node webhook_receiver.mjs
//
// Prints "listening <port>" once ready. POST / verifies (200, or 401 with the error);
// GET /events answers {"accepted": [{id, event, room}...], "rejected": [msg...]}.
import http from "node:http";
import { WebhookReceiver } from "livekit-server-sdk";

const receiver = new WebhookReceiver(process.env.API_KEY, process.env.API_SECRET);
const accepted = [];
const rejected = [];

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", async () => {
    if (req.method === "GET") {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ accepted, rejected }));
      return;
    }
    const body = Buffer.concat(chunks).toString("utf8");
    try {
      const event = await receiver.receive(body, req.headers["authorization"]);
      accepted.push({
        id: event.id,
        event: event.event,
        room: event.room?.name ?? "",
        contentType: req.headers["content-type"] ?? "",
        userAgent: req.headers["user-agent"] ?? "",
        createdAt: Number(event.createdAt ?? 0),
      });
      res.writeHead(200);
      res.end("ok");
    } catch (err) {
      rejected.push(String(err?.message ?? err));
      res.writeHead(401);
      res.end("rejected");
    }
  });
});

server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  console.log(`listening ${server.address().port}`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
