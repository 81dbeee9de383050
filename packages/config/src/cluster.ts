/**
 * `global.cluster`: several gateways sharing one-time tokens, rate limits, step-1 windows and leases
 * through Valkey/Redis. Off when absent. Only the unprivileged processes (knockport-server,
 * knockport-cluster-sync) read it; the helper never talks to the store.
 */

/** The store as the YAML names it. */
export interface RawCluster {
  url: string;
  key_prefix: string;
  tls?: RawClusterTls;
  username?: string;
  password_file?: string;
}
export interface RawClusterTls {
  ca_file?: string;
  server_name?: string;
}

export const CLUSTER_KEY_PREFIX_PATTERN = "^[A-Za-z0-9._:-]{1,64}$";
/** Sentinel and Cluster URLs list their nodes; more than this is a typo, not a deployment. */
export const CLUSTER_MAX_NODES = 16;

export const clusterSchema = {
  type: "object",
  additionalProperties: false,
  required: ["url", "key_prefix"],
  properties: {
    url: { type: "string", minLength: 8, maxLength: 1024 },
    key_prefix: { type: "string", pattern: CLUSTER_KEY_PREFIX_PATTERN },
    tls: {
      type: "object",
      additionalProperties: false,
      required: [],
      properties: {
        ca_file: { type: "string", minLength: 1, maxLength: 4096, nullable: true },
        server_name: { type: "string", minLength: 1, maxLength: 253, nullable: true },
      },
      nullable: true,
    },
    username: { type: "string", minLength: 1, maxLength: 128, pattern: "^[A-Za-z0-9._@-]+$", nullable: true },
    password_file: { type: "string", minLength: 1, maxLength: 4096, nullable: true },
  },
  nullable: true,
} as const;

export const CLUSTER_HINT =
  "a mapping with url (redis://HOST:PORT[/DB], rediss://…, unix:/PATH, redis-sentinel://HOST:PORT,…/MASTER or redis-cluster://HOST:PORT,…), key_prefix (1-64 characters A-Z a-z 0-9 . _ : -) and optionally tls {ca_file, server_name}, username, password_file";

export interface ClusterNode {
  readonly host: string;
  readonly port: number;
}

export type ClusterEndpoint =
  | { readonly kind: "standalone"; readonly node: ClusterNode; readonly db: number }
  | { readonly kind: "unix"; readonly path: string; readonly db: number }
  | { readonly kind: "sentinel"; readonly sentinels: readonly ClusterNode[]; readonly masterName: string; readonly db: number }
  | { readonly kind: "cluster"; readonly nodes: readonly ClusterNode[] };

export interface ClusterConfig {
  /** The url as written, for messages (it never holds a password: those are refused). */
  readonly url: string;
  readonly endpoint: ClusterEndpoint;
  /** Every key and channel starts with it: one store may serve several clusters. */
  readonly keyPrefix: string;
  /** TLS towards the store (rediss://, or a `tls` mapping); paths absolute. */
  readonly tls: { readonly caFile: string | undefined; readonly serverName: string | undefined } | undefined;
  readonly username: string | undefined;
  /** Read by the process that connects, never by the loader (the helper loads the same config). */
  readonly passwordFile: string | undefined;
}

const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])$/;

function parseNode(text: string, defaultPort: number): ClusterNode | string {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(text);
  if (!m || !HOST.test(m[1]!)) return `${JSON.stringify(text)} is not HOST or HOST:PORT`;
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (port < 1 || port > 65535) return `port ${m[2]} is not 1-65535`;
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port };
}

function parseDb(text: string | undefined): number | string {
  if (text === undefined || text === "") return 0;
  return /^\d{1,2}$/.test(text) && Number(text) <= 15 ? Number(text) : `database ${JSON.stringify(text)} is not 0-15`;
}

function parseNodes(list: string, defaultPort: number): ClusterNode[] | string {
  const parts = list.split(",");
  if (parts.length > CLUSTER_MAX_NODES) return `more than ${CLUSTER_MAX_NODES} nodes`;
  const nodes: ClusterNode[] = [];
  for (const p of parts) {
    const n = parseNode(p, defaultPort);
    if (typeof n === "string") return n;
    nodes.push(n);
  }
  return nodes;
}

/** The endpoint a url names plus whether it asks for TLS, or why it is refused. */
export function parseClusterUrl(url: string): { endpoint: ClusterEndpoint; tls: boolean } | string {
  if (/[\s]/.test(url)) return "must not contain spaces";
  const scheme = /^([a-z-]+):/.exec(url)?.[1];
  if (scheme === "unix") {
    const m = /^unix:(\/[^?#@]+?)(?:\?db=(\d+))?$/.exec(url);
    if (!m) return "unix: must be unix:/ABSOLUTE/PATH[?db=N]";
    const db = parseDb(m[2]);
    return typeof db === "string" ? db : { endpoint: { kind: "unix", path: m[1]!, db }, tls: false };
  }
  const m = /^([a-z-]+):\/\/([^/?#]+)(?:\/([^/?#]*))?$/.exec(url);
  if (!m) return "must be redis://HOST:PORT[/DB], rediss://HOST:PORT[/DB], unix:/PATH, redis-sentinel://HOST:PORT,…/MASTER or redis-cluster://HOST:PORT,…";
  const [, , authority = "", rest] = m;
  if (authority.includes("@")) return "must not hold a user or password: use cluster.username and cluster.password_file";
  switch (scheme) {
    case "redis":
    case "rediss": {
      const node = parseNode(authority, 6379);
      const db = parseDb(rest);
      if (typeof node === "string") return node;
      if (typeof db === "string") return db;
      return { endpoint: { kind: "standalone", node, db }, tls: scheme === "rediss" };
    }
    case "redis-sentinel":
    case "rediss-sentinel": {
      const sentinels = parseNodes(authority, 26379);
      if (typeof sentinels === "string") return sentinels;
      if (rest === undefined || !/^[A-Za-z0-9._-]{1,64}$/.test(rest)) return "a Sentinel url ends in /MASTER-NAME";
      return { endpoint: { kind: "sentinel", sentinels, masterName: rest, db: 0 }, tls: scheme === "rediss-sentinel" };
    }
    case "redis-cluster":
    case "rediss-cluster": {
      const nodes = parseNodes(authority, 6379);
      if (typeof nodes === "string") return nodes;
      if (rest !== undefined && rest !== "") return "a Cluster url has no database (Redis Cluster has only database 0)";
      return { endpoint: { kind: "cluster", nodes }, tls: scheme === "rediss-cluster" };
    }
    default:
      return `unknown scheme ${JSON.stringify(scheme ?? url)}: use redis, rediss, unix, redis-sentinel or redis-cluster`;
  }
}

/** The loaded `global.cluster`; `absolute` resolves relative paths from the config file's folder. */
export function clusterFromRaw(raw: RawCluster, absolute: (path: string) => string, fail: (problem: string) => void): ClusterConfig | undefined {
  const parsed = parseClusterUrl(raw.url);
  if (typeof parsed === "string") {
    // a url with "@" may hold a password: it is not repeated
    fail(`global.cluster.url: ${parsed}${raw.url.includes("@") ? "" : ` (got ${JSON.stringify(raw.url)})`}`);
    return undefined;
  }
  const tlsWanted = parsed.tls || (raw.tls !== undefined && raw.tls !== null);
  if (parsed.endpoint.kind === "unix" && raw.tls) fail("global.cluster.tls: not used with a unix: url; remove it");
  return {
    url: raw.url,
    endpoint: parsed.endpoint,
    keyPrefix: raw.key_prefix,
    tls: tlsWanted
      ? { caFile: raw.tls?.ca_file ? absolute(raw.tls.ca_file) : undefined, serverName: raw.tls?.server_name ?? undefined }
      : undefined,
    username: raw.username ?? undefined,
    passwordFile: raw.password_file ? absolute(raw.password_file) : undefined,
  };
}
