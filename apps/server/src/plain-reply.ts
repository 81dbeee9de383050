import type { Socket } from "node:net";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { KnockStep } from "@knockport/protocol";

/** Send a short text/plain answer. */
export type PlainReply = (request: FastifyRequest, reply: FastifyReply, status: number, text: string) => FastifyReply;

const sendNormally: PlainReply = (_request, reply, status, text) => reply.code(status).type("text/plain").send(text);

/**
 * Step 1's stealth port drops every reply but the SYN-ACK, so a socket closed the normal way
 * (FIN) would sit in FIN-WAIT-1 retransmitting into the drop rule for minutes. The answer is
 * written and the connection reset in the same tick: nothing lingers, and a client that is not
 * behind the firewall (loopback, a WAF) still receives the answer before the reset.
 */
const sendAndReset: PlainReply = (request, reply, status, text) => {
  const socket = request.raw.socket as Socket | undefined;
  if (typeof socket?.resetAndDestroy !== "function") {
    return reply.code(status).type("text/plain").header("connection", "close").send(text); // inject(): no real socket
  }
  reply.hijack();
  reply.raw.writeHead(status, {
    "content-type": "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    connection: "close",
  });
  reply.raw.end(text);
  socket.resetAndDestroy();
  return reply;
};

/**
 * Step 1 resets after answering, except towards a trusted proxy (WAF mode): nginx talks to us over
 * loopback, outside the stealth drop, and a reset would turn its upstream answer into a 502 and an
 * error log line per knock. The client-facing side is nginx's, behind the stealth rules on its port.
 */
export function plainReplyFor(step: KnockStep, viaTrustedProxy: (request: FastifyRequest) => boolean = () => false): PlainReply {
  if (step !== 1) return sendNormally;
  return (request, reply, status, text) => (viaTrustedProxy(request) ? sendNormally : sendAndReset)(request, reply, status, text);
}

/** For the step-1 server: connections that time out or send garbage are reset, not closed. */
export function resetSocket(_err: unknown, socket: Socket): void {
  socket.resetAndDestroy();
}
