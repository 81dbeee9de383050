import type { Server as HttpsServer } from "node:https";
import type { Socket } from "node:net";
import Fastify, { LogController, type FastifyHttpsOptions, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from "fastify";
import formbody from "@fastify/formbody";
import rateLimit from "@fastify/rate-limit";
import type { KnockportConfig } from "@knockport/config";
import { parseIpAddress, type KnockStep } from "@knockport/protocol";
import { ipv6NetworkKey } from "@knockport/protocol/client";
import type { HelperClient } from "@knockport/helper-client";
import type { Logger } from "pino";
import { KeyChecker } from "./keys.js";
import { knockRoute } from "./knock-route.js";
import { plainReplyFor, resetSocket, type PlainReply } from "./plain-reply.js";
import type { ServerMetrics } from "./metrics.js";
import { Step1Memory } from "./step1-memory.js";
import { ClientAddressResolver, type ClientAddress } from "./client-address.js";
import { TwoFactor, type TwoFactorOptions, type UsedTokenStore } from "./two-factor.js";
import type { ServerCluster } from "./cluster.js";
import { logEvent } from "@knockport/protocol/events";

/** The part of HelperClient the routes use; tests pass a fake. */
export type HelperPort = Pick<HelperClient, "call">;

/** State both listeners share: step 2 must see what step 1 recorded. */
export interface KnockContext {
  readonly config: KnockportConfig;
  readonly helper: HelperPort;
  readonly keys: KeyChecker;
  readonly step1: Step1Memory;
  readonly twoFactor: TwoFactor;
  /** Whom a request is for: the peer, or in WAF mode the client a trusted proxy names. */
  readonly clientAddress: ClientAddressResolver;
  /** Cluster mode (`global.cluster`): tokens, rate limits and step-1 windows shared with the other gateways. */
  readonly cluster: ServerCluster | undefined;
}

declare module "fastify" {
  interface FastifyRequest {
    /** Set by the first onRequest hook of both listeners (null before it); `ok` by the time a route runs. */
    knockClient: ClientAddress | null;
  }
}

/** `usedTokens`: where accepted TOTP tokens are remembered (the server passes its --state-dir file store). */
export function createKnockContext(
  config: KnockportConfig,
  helper: HelperPort,
  now: () => number = Date.now,
  usedTokens?: UsedTokenStore,
  cluster?: ServerCluster,
  onTwoFactorProblem?: TwoFactorOptions["onProblem"],
): KnockContext {
  return {
    config,
    helper,
    cluster,
    keys: new KeyChecker(config),
    step1: new Step1Memory(100_000, now),
    clientAddress: new ClientAddressResolver(config.waf?.trustedProxies),
    twoFactor: new TwoFactor({
      folder: config.global.twoFactorFolder,
      now,
      skewPeriods: config.global.twoFactorSkewPeriods,
      ...(usedTokens !== undefined ? { usedTokens } : {}),
      ...(onTwoFactorProblem !== undefined ? { onProblem: onTwoFactorProblem } : {}),
    }),
  };
}

export interface BuildKnockAppOptions {
  step: KnockStep;
  context: KnockContext;
  logger: Logger | false;
  https?: { cert: Buffer; key: Buffer };
  /** Counts every answer by step and outcome (served by the --metrics-port listener). */
  metrics?: ServerMetrics | undefined;
}

/** Stealth port: a connection that has not delivered its knock by then is reset. */
const STEALTH_CONNECTION_TIMEOUT_MS = 3000;

/**
 * Node enforces headersTimeout/requestTimeout only when it sweeps its connections, by default every
 * 30 s: a slow-loris client trickling header bytes kept its socket for up to 35 s (test/faults).
 * Sweep every second, so a stalled request is cut about 5 s after it started.
 */
const NODE_SERVER_TIMEOUTS = { connectionsCheckingInterval: 1000, headersTimeout: 5_000, requestTimeout: 5_000 };

/**
 * A TCP connection to the HTTPS port that never starts its TLS handshake is not an HTTP request yet:
 * none of the timeouts above apply, and Node's own handshake limit is 120 s (test/faults slow-loris).
 */
const TLS_HANDSHAKE_TIMEOUT_MS = 5_000;

/**
 * One listener's Fastify instance: step 1 (HTTP) or step 2 (HTTPS), each serving only its own
 * route. Timeouts are explicit so stalled clients cannot hold the listener.
 */
export async function buildKnockApp(opts: BuildKnockAppOptions): Promise<FastifyInstance> {
  const { step, context } = opts;
  const serverOptions: FastifyServerOptions = {
    loggerInstance: opts.logger === false ? undefined : opts.logger,
    logger: opts.logger === false ? false : undefined,
    // Request lines would carry the secret paths; the route logs its own outcome instead.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: step === 1 ? 1024 : 4096,
    connectionTimeout: step === 1 ? STEALTH_CONNECTION_TIMEOUT_MS : 10_000,
    requestTimeout: 5_000,
    keepAliveTimeout: step === 1 ? 1 : 2_000,
    maxRequestsPerSocket: step === 1 ? 1 : 10,
    return503OnClosing: true,
    trustProxy: false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    ...(step === 1 ? { clientErrorHandler: resetSocket } : {}),
  };
  // A trusted proxy's connection runs over loopback, outside the stealth drop: it gets a normal answer.
  // That holds for its 400s (missing or garbled client header) too.
  const sendReply = plainReplyFor(step, (request) => request.knockClient !== null && "proxy" in request.knockClient);
  const { metrics } = opts;
  // Every answer (route, 400, 404, 429, 500) goes through plainReply: the one place to count them.
  const plainReply: PlainReply = metrics
    ? (request, reply, status, text) => {
        metrics.countKnock(step, status);
        return sendReply(request, reply, status, text);
      }
    : sendReply;
  const app: FastifyInstance = opts.https
    ? (Fastify({
        ...serverOptions,
        https: { cert: opts.https.cert, key: opts.https.key, ...NODE_SERVER_TIMEOUTS, handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS },
      } as FastifyHttpsOptions<HttpsServer>) as unknown as FastifyInstance)
    : Fastify({ ...serverOptions, http: NODE_SERVER_TIMEOUTS });

  if (step === 1) {
    // With a 'timeout' listener Node no longer closes idle sockets itself (which would send a FIN).
    app.server.on("timeout", (socket: Socket) => socket.resetAndDestroy());
  }

  app.setErrorHandler((error: { statusCode?: number; validation?: unknown; message: string }, request, reply) => {
    const status = error.statusCode ?? 500;
    // the rate limiter counts in the cluster store: when it cannot, the knock is refused (503)
    if (status === 500 && context.cluster?.isStoreError(error)) return storeUnavailable(request, reply);
    if (status === 429) {
      const client = request.knockClient;
      const ip = (client?.ok === true ? client.ip : undefined) ?? request.ip;
      logEvent(request.log, "warn", "knock.rate_limited", { step, ip, ...(client?.ok === true && client.viaProxy ? { proxy: client.proxy } : {}), status }, "rate limited");
      return plainReply(request, reply, 429, "Too Many Requests\n");
    }
    if (error.validation !== undefined || (status >= 400 && status < 500)) {
      logEvent(request.log, "info", "knock.bad_request", { step, status: 400 }, "bad form");
      return plainReply(request, reply, 400, "Bad Request\n");
    }
    logEvent(request.log, "error", "knock.failed", { step, cause: "error", err: error.message, status: 500 }, "unexpected error");
    return plainReply(request, reply, 500, "Internal Server Error\n");
  });
  app.setNotFoundHandler((request, reply) => plainReply(request, reply, 404, "Not Found\n"));

  // First hook: the rate limit and the route both key on the client, not on a proxy in front.
  app.decorateRequest("knockClient", null);
  app.addHook("onRequest", async (request, reply) => {
    const client = context.clientAddress.resolve(request.raw.socket?.remoteAddress ?? request.ip, request.headers);
    request.knockClient = client;
    if (!client.ok) {
      logEvent(request.log, "warn", "knock.bad_proxy_header", { step, proxy: client.proxy, reason: client.reason, status: 400 }, client.reason);
      return plainReply(request, reply, 400, "Bad Request\n");
    }
    // Without the store nothing can be counted or spent cluster-wide: refused at once, not after a timeout.
    if (context.cluster && !context.cluster.storeReady) return storeUnavailable(request, reply);
    return undefined;
  });
  const storeUnavailable = (request: FastifyRequest, reply: FastifyReply): FastifyReply => {
    logEvent(request.log, "error", "knock.failed", { step, cause: "store-unavailable", status: 503 }, "cluster store unavailable");
    return plainReply(request, reply, 503, "Service Unavailable\n");
  };
  await app.register(rateLimit, {
    global: true,
    ...(context.cluster ? { redis: context.cluster.connection, nameSpace: context.cluster.store.rateLimitNamespace(step) } : {}),
    max: context.config.global.rateLimitPerMinute,
    timeWindow: 60_000,
    // IPv6: one budget per prefix (a subscriber's /64 holds 2^64 addresses); IPv4: per address.
    keyGenerator: (request) => {
      const ip = (request.knockClient?.ok === true ? request.knockClient.ip : undefined) ?? parseIpAddress(request.ip);
      return ip === undefined ? request.ip : ipv6NetworkKey(ip, context.config.global.rateLimitIpv6Prefix);
    },
    errorResponseBuilder: (_request, info) => ({ statusCode: 429, message: `limit ${info.max} per minute` }),
    addHeadersOnExceeding: { "x-ratelimit-limit": false, "x-ratelimit-remaining": false, "x-ratelimit-reset": false },
    addHeaders: { "x-ratelimit-limit": false, "x-ratelimit-remaining": false, "x-ratelimit-reset": false, "retry-after": true },
  });
  // Form-encoded only, as the original: drop Fastify's built-in JSON and text parsers so any other
  // content type is refused (415, answered as 400) before a route sees it.
  app.removeAllContentTypeParsers();
  await app.register(formbody, { bodyLimit: step === 1 ? 1024 : 4096 });
  await app.register(knockRoute, { step, context, plainReply });
  return app;
}
