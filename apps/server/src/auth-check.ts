import { chmodSync, lstatSync, unlinkSync } from "node:fs";
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyServerOptions, type FastifyRequest } from "fastify";
import { DEFAULT_WAF_TRUSTED_IPS, formatAuthCheckListen, parseTrustedProxy, type AuthCheckListen, type KnockportConfig, type TrustedProxy } from "@knockport/config";
import { HelperCallError } from "@knockport/helper-client";
import { APP_NAME_PATTERN, parseIpAddress, type IpAddress } from "@knockport/protocol";
import type { Logger } from "pino";
import type { HelperPort } from "./app.js";
import { ClientAddressResolver, clientFromProxyHeaders } from "./client-address.js";
import { logEvent, type EventFields, type SERVER_EVENTS } from "@knockport/protocol/events";

/**
 * The auth-check listener: `GET /check?app=A` for a reverse proxy's sub-request (nginx `auth_request`,
 * Caddy `forward_auth`, Traefik `forwardAuth`). 204 when the client the proxy names holds a live
 * service lease of app A, 403 for anything else, 400 for a request that names no client or no app.
 * It asks the helper's read-only `check`; nothing here can open or close anything.
 */
export interface AuthCheckOptions {
  config: KnockportConfig;
  helper: HelperPort;
  /** Unix socket: every peer that can connect is the proxy (the socket's mode decides who can). */
  unixSocket: boolean;
  logger: Logger | false;
}

const querySchema = {
  type: "object",
  additionalProperties: false,
  required: ["app"],
  properties: { app: { type: "string", pattern: APP_NAME_PATTERN, maxLength: 32 } },
} as const;

/** The proxies whose headers the check believes: WAF mode's list, loopback when WAF mode is off. */
export function authCheckTrustedProxies(config: KnockportConfig): readonly TrustedProxy[] {
  return config.waf?.trustedProxies ?? DEFAULT_WAF_TRUSTED_IPS.map((t) => parseTrustedProxy(t) as TrustedProxy);
}

type Refusal = EventFields<(typeof SERVER_EVENTS)["auth-check.refused"]>["outcome"];
type Verdict = EventFields<(typeof SERVER_EVENTS)["auth-check.answered"]>["outcome"] | Refusal;
const STATUS: Record<Verdict, number> = { open: 204, closed: 403, "unknown-app": 403, "untrusted-peer": 403, "bad-header": 400, "helper-failed": 403 };
const TEXT: Record<number, string> = { 400: "Bad Request\n", 403: "Forbidden\n", 404: "Not Found\n" };

function send(reply: FastifyReply, status: number): FastifyReply {
  reply.code(status).header("cache-control", "no-store");
  return status === 204 ? reply.send() : reply.type("text/plain; charset=utf-8").send(TEXT[status] ?? "Forbidden\n");
}

export async function buildAuthCheckApp(opts: AuthCheckOptions): Promise<FastifyInstance> {
  const { config, helper } = opts;
  const resolver = new ClientAddressResolver(authCheckTrustedProxies(config));
  const apps = new Set(config.apps.map((a) => a.name));
  const serverOptions: FastifyServerOptions = {
    loggerInstance: opts.logger === false ? undefined : opts.logger,
    logger: opts.logger === false ? false : undefined,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024,
    connectionTimeout: 10_000,
    requestTimeout: 5_000,
    keepAliveTimeout: 5_000,
    trustProxy: false,
    return503OnClosing: true,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  };
  const app = Fastify({ ...serverOptions, http: { connectionsCheckingInterval: 1000, headersTimeout: 5_000, requestTimeout: 5_000 } });
  app.setErrorHandler((error: { statusCode?: number; validation?: unknown; message: string }, request, reply) => {
    const status = error.statusCode ?? 500;
    if (error.validation !== undefined || (status >= 400 && status < 500)) return send(reply, 400);
    logEvent(request.log, "error", "auth-check.failed", { err: error.message }, "unexpected error");
    return send(reply, 403);
  });
  app.setNotFoundHandler((_request, reply) => send(reply, 404));

  const clientOf = (request: FastifyRequest): { verdict: Refusal; reason?: string } | { ip: IpAddress } => {
    if (!opts.unixSocket) {
      const peer = parseIpAddress(request.raw.socket?.remoteAddress ?? "");
      if (!resolver.isTrusted(peer)) return { verdict: "untrusted-peer", reason: "the peer is not a trusted proxy (global.waf_trusted_ips, default loopback)" };
    }
    const named = clientFromProxyHeaders(request.headers);
    return named.ok ? { ip: named.ip } : { verdict: "bad-header", reason: named.reason };
  };

  app.get<{ Querystring: { app: string } }>("/check", { schema: { querystring: querySchema } }, async (request, reply) => {
    const appName = request.query.app;
    const client = clientOf(request);
    if (!("ip" in client)) {
      logEvent(request.log, "warn", "auth-check.refused", { outcome: client.verdict, peer: request.raw.socket?.remoteAddress ?? "unix", reason: client.reason ?? client.verdict }, client.reason);
      return send(reply, STATUS[client.verdict]);
    }
    let verdict: Exclude<Verdict, Refusal>;
    if (!apps.has(appName)) {
      verdict = "unknown-app";
    } else {
      try {
        verdict = (await helper.call("check", { app: appName, ip: client.ip })).open ? "open" : "closed";
      } catch (err) {
        verdict = "helper-failed";
        const why = err instanceof HelperCallError ? `${err.code}: ${err.message}` : String((err as Error)?.message ?? err);
        logEvent(request.log, "error", "helper.failed", { err: why }, "helper could not answer the check; denied");
      }
    }
    // Only configured names are logged, as for knocks.
    logEvent(request.log, "debug", "auth-check.answered", { app: apps.has(appName) ? appName : "(unknown)", ip: client.ip, outcome: verdict }, `check ${verdict}`);
    return send(reply, STATUS[verdict]);
  });
  return app;
}

/** Listens where `listen` says; a Unix socket is made 0660 (the server's user and group). */
export async function listenAuthCheck(app: FastifyInstance, listen: AuthCheckListen): Promise<void> {
  const where = formatAuthCheckListen(listen);
  try {
    if (listen.kind === "tcp") {
      await app.listen({ host: listen.host, port: listen.port });
      return;
    }
    // A socket file left by a server that died; anything else at that path is not ours to remove.
    if (lstatSync(listen.path, { throwIfNoEntry: false })?.isSocket() === true) unlinkSync(listen.path);
    await app.listen({ path: listen.path });
    chmodSync(listen.path, 0o660);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`auth-check listener ${where}: cannot listen (${code ?? (err as Error).message})`);
  }
}
