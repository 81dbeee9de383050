#!/usr/bin/env node
// The bench's floor: a do-nothing Node HTTPS server (same certificate as KnockPort's step 2). It reads
// the request body and answers 200 "ok". Usage: floor-server.mjs CERT KEY PORT
import { readFileSync } from "node:fs";
import https from "node:https";

const [cert, key, port] = process.argv.slice(2);
const server = https.createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("ok\n");
  });
});
server.listen(Number(port), "::", () => process.stdout.write("floor listening\n"));
process.once("SIGTERM", () => server.close(() => process.exit(0)));
