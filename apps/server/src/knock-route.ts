import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ACCESS_KEY_MAX_LENGTH, ACCESS_KEY_MIN_LENGTH } from "@knockport/config";
import { HelperCallError } from "@knockport/helper-client";
import type { KnockStep } from "@knockport/protocol";
import { logEvent, type EventFields, type SERVER_EVENTS } from "@knockport/protocol/events";
import type { KnockContext } from "./app.js";
import type { PlainReply } from "./plain-reply.js";

interface KnockBody {
  app: string;
  access_key?: string;
  token?: string;
  close?: "1";
}

/** `close=1`, nothing else. (A form field, not a command-line flag.) */
const closeField = { type: "string", enum: ["1"] } as const;

/**
 * The original's form: `app`, `access_key`, optional `token`; and `close=1` (step 2 only): the client
 * ends its own lease instead of refreshing it. Anything else is a bad form.
 */
const knockBodySchema = {
  type: "object",
  additionalProperties: false,
  required: ["app"],
  properties: {
    app: { type: "string", minLength: 1, maxLength: 50 },
    access_key: { type: "string", minLength: ACCESS_KEY_MIN_LENGTH, maxLength: ACCESS_KEY_MAX_LENGTH },
    token: { type: "string", pattern: "^[0-9]{6}$" },
    close: closeField,
  },
} as const;

export interface KnockRouteOptions {
  step: KnockStep;
  context: KnockContext;
  plainReply: PlainReply;
}

type Accepted = EventFields<(typeof SERVER_EVENTS)["knock.accepted"]>["outcome"];
/** Why a knock is refused: logged (knock.refused), never told to the client. */
type Refusal = EventFields<(typeof SERVER_EVENTS)["knock.refused"]>["reason"];
type Failure = Exclude<EventFields<(typeof SERVER_EVENTS)["knock.failed"]>["cause"], "error">;
type Outcome = Accepted | Refusal | Failure | "bad-request";

/** The original's answers; every kind of refusal looks the same. */
const ANSWERS: Record<Accepted | Failure | "bad-request" | "refused", readonly [number, string]> = {
  ok: [200, "OK\n"],
  closed: [200, "OK\n"],
  healthcheck: [200, "OK\n"],
  refused: [403, "Forbidden\n"],
  "bad-request": [400, "Bad Request\n"],
  "helper-failed": [500, "Internal Server Error\n"],
  // cluster mode: a 2FA token cannot be spent cluster-wide, so it is not accepted anywhere
  "store-unavailable": [503, "Service Unavailable\n"],
};
const isAccepted = (o: Outcome): o is Accepted => o === "ok" || o === "closed" || o === "healthcheck";
const isFailure = (o: Outcome): o is Failure => o === "helper-failed" || o === "store-unavailable";

/** Serves POST <http_post_path> (step 1) or POST <https_post_path> (step 2), nothing else. */
export async function knockRoute(app: FastifyInstance, opts: KnockRouteOptions): Promise<void> {
  const { step, context, plainReply } = opts;
  const { config, keys, step1, twoFactor, helper, cluster } = context;
  const path = step === 1 ? config.global.httpPostPath : config.global.httpsPostPath;
  const knownApps = new Set(config.apps.map((a) => a.name));

  const answer = (
    request: FastifyRequest,
    reply: FastifyReply,
    outcome: Outcome,
    appName: string,
    ip: string | undefined,
    body?: string,
  ): FastifyReply => {
    const [status, text] = ANSWERS[isAccepted(outcome) || isFailure(outcome) || outcome === "bad-request" ? outcome : "refused"];
    // Only configured names are logged: what a client typed into `app` stays out of the logs.
    const logged = knownApps.has(appName) || appName === config.global.healthcheckAppName ? appName : "(unknown)";
    const client = request.knockClient;
    const where = { step, app: logged, ip: ip ?? request.ip, ...(client?.ok === true && client.viaProxy ? { proxy: client.proxy } : {}) };
    if (isAccepted(outcome)) logEvent(request.log, "info", "knock.accepted", { ...where, outcome, status }, `step ${step} ${outcome}`);
    else if (isFailure(outcome)) logEvent(request.log, "error", "knock.failed", { ...where, cause: outcome, status }, `step ${step} ${outcome}`);
    else if (outcome === "bad-request") logEvent(request.log, "info", "knock.bad_request", { ...where, status }, "bad form");
    else logEvent(request.log, "info", "knock.refused", { ...where, reason: outcome, status }, `step ${step} refused: ${outcome}`);
    return plainReply(request, reply, status, body ?? text);
  };

  app.post<{ Body: KnockBody }>(path, { schema: { body: knockBodySchema } }, async (request, reply) => {
    const { app: appName, access_key: accessKey, token, close } = request.body;
    if (config.global.healthcheckAppName !== undefined && appName === config.global.healthcheckAppName) {
      return answer(request, reply, "healthcheck", appName, undefined);
    }
    if (accessKey === undefined || (close !== undefined && step === 1)) return answer(request, reply, "bad-request", appName, undefined);
    // the onRequest hook answered 400 for anything but ok
    const ip = request.knockClient?.ok === true ? request.knockClient.ip : undefined;
    const appConfig = config.apps.find((a) => a.name === appName);
    if (!ip) return answer(request, reply, "no-address", appName, undefined);

    if (step === 1) {
      const keyIndex = keys.matchStep1(appName, accessKey);
      // The 2FA check runs only for a matching key, so a wrong key cannot burn someone's token.
      const { result: secondFactor, spent } = keyIndex >= 0 ? twoFactor.checkAndSpend(accessKey, token) : { result: "denied" as const };
      if (!appConfig) return answer(request, reply, "unknown-app", appName, ip);
      if (keyIndex < 0) return answer(request, reply, "bad-key", appName, ip);
      if (secondFactor === "denied") return answer(request, reply, "bad-2fa", appName, ip);
      // Cluster mode: the token is spent on every gateway before anything opens.
      const clusterSpend = spent && cluster ? await cluster.spendToken(spent) : undefined;
      if (clusterSpend?.outcome === "spent") return answer(request, reply, "token-spent", appName, ip);
      if (clusterSpend?.outcome === "unavailable") {
        twoFactor.release(accessKey, token); // nothing opened: the user may retry once the store is back
        return answer(request, reply, "store-unavailable", appName, ip);
      }
      // Recorded before the helper call: the HTTPS port opens inside that call, and a fast client's
      // step 2 may arrive before the helper's answer does.
      step1.remember(appName, ip, keyIndex, appConfig.step2HttpsDurationSeconds);
      try {
        await helper.call("open", { step: 1, app: appName, ip });
      } catch (err) {
        step1.forget(appName, ip);
        // The code is given back only when the helper surely opened nothing; after a timeout or a
        // dropped connection the grant may have landed, so the code stays spent.
        if (secondFactor === "ok" && helperSurelyRefused(err)) {
          twoFactor.release(accessKey, token);
          await clusterSpend?.release?.();
        }
        logEvent(request.log, "error", "helper.failed", { step, err: describeHelperError(err) }, "helper could not open the HTTPS port");
        return answer(request, reply, "helper-failed", appName, ip);
      }
      await cluster?.shareStep1(appName, ip, keyIndex, appConfig.step2HttpsDurationSeconds);
      return answer(request, reply, "ok", appName, ip);
    }

    // a window another gateway announced whose message has not (yet) reached this one is in the store
    const pairedIndex = step1.lookup(appName, ip) ?? (cluster && appConfig ? await cluster.sharedStep1(appName, ip) : undefined);
    const keyOk = keys.matchStep2(appName, pairedIndex ?? 0, accessKey);
    if (!appConfig) return answer(request, reply, "unknown-app", appName, ip);
    if (pairedIndex === undefined) return answer(request, reply, "no-step1", appName, ip);
    if (!keyOk) return answer(request, reply, "bad-key", appName, ip);
    let expiresAt: string | undefined;
    try {
      if (close === "1") await helper.call("release", { app: appName, ip });
      else expiresAt = (await helper.call("open", { step: 2, app: appName, ip })).expiresAt;
    } catch (err) {
      if (err instanceof HelperCallError && err.helperError === "STEP1_REQUIRED") {
        return answer(request, reply, "no-step1", appName, ip);
      }
      logEvent(request.log, "error", "helper.failed", { step, err: describeHelperError(err) }, `helper could not ${close === "1" ? "close" : "open"} the service port`);
      return answer(request, reply, "helper-failed", appName, ip);
    }
    if (close === "1") return answer(request, reply, "closed", appName, ip);
    // The plain `OK` line stays first for the original's curl scripts; a keep-alive client reads when the
    // lease ends and the address it is for (behind a NAT, not one the client can see itself).
    const expires = expiresAt === undefined ? "" : `expires=${Math.floor(Date.parse(expiresAt) / 1000)}\n`;
    return answer(request, reply, "ok", appName, ip, `OK\n${expires}address=${ip}\n`);
  });
}

/** The helper answered an error, or the request never reached it. */
function helperSurelyRefused(err: unknown): boolean {
  return err instanceof HelperCallError && (err.code === "HELPER_REJECTED" || !err.requestSent);
}

function describeHelperError(err: unknown): string {
  return err instanceof HelperCallError ? `${err.code}: ${err.message}` : String((err as Error)?.message ?? err);
}
