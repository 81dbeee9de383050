import { describe, expect, it } from "vitest";
import { parseClusterUrl, parseConfig } from "../src/index.js";
import { FILE, baseDoc, problemsOf } from "./helpers.js";

function withCluster(cluster: unknown): ReturnType<typeof baseDoc> {
  const doc = baseDoc();
  doc.global.cluster = cluster;
  return doc;
}

describe("global.cluster", () => {
  it("is off unless configured", () => {
    expect(parseConfig(baseDoc(), FILE).global.cluster).toBeUndefined();
  });

  it("takes a url and key prefix; relative files are taken from the config's folder", () => {
    const c = parseConfig(
      withCluster({ url: "rediss://store.example:6380/2", key_prefix: "site1", username: "knockport", password_file: "cluster.pw", tls: { ca_file: "/etc/ca.pem" } }),
      "/etc/knockport/config.yaml",
    ).global.cluster;
    expect(c).toEqual({
      url: "rediss://store.example:6380/2",
      endpoint: { kind: "standalone", node: { host: "store.example", port: 6380 }, db: 2 },
      keyPrefix: "site1",
      tls: { caFile: "/etc/ca.pem", serverName: undefined },
      username: "knockport",
      passwordFile: "/etc/knockport/cluster.pw",
    });
  });

  it("accepts Sentinel, Cluster and unix urls", () => {
    expect(parseClusterUrl("redis-sentinel://10.0.0.1:26379,10.0.0.2,[fd00::3]:26380/mymaster")).toEqual({
      endpoint: {
        kind: "sentinel",
        sentinels: [
          { host: "10.0.0.1", port: 26379 },
          { host: "10.0.0.2", port: 26379 },
          { host: "fd00::3", port: 26380 },
        ],
        masterName: "mymaster",
        db: 0,
      },
      tls: false,
    });
    expect(parseClusterUrl("redis-cluster://a:7000,b:7001")).toEqual({
      endpoint: { kind: "cluster", nodes: [{ host: "a", port: 7000 }, { host: "b", port: 7001 }] },
      tls: false,
    });
    expect(parseClusterUrl("unix:/run/redis/redis.sock?db=3")).toEqual({ endpoint: { kind: "unix", path: "/run/redis/redis.sock", db: 3 }, tls: false });
  });

  it("refuses a password in the url, unknown schemes, bad ports and unknown keys, naming the key", () => {
    const withPassword = problemsOf(() => parseConfig(withCluster({ url: "redis://:secret@h:6379", key_prefix: "p" }), FILE));
    expect(withPassword).toEqual([expect.stringMatching(/global\.cluster\.url: must not hold a user or password: use cluster\.username and cluster\.password_file$/)]);
    expect(withPassword.join()).not.toContain("secret");
    expect(problemsOf(() => parseConfig(withCluster({ url: "http://h:6379", key_prefix: "p" }), FILE))[0]).toMatch(/: global\.cluster\.url: unknown scheme "http"/);
    expect(problemsOf(() => parseConfig(withCluster({ url: "redis://h:70000", key_prefix: "p" }), FILE))[0]).toMatch(/port 70000 is not 1-65535/);
    expect(problemsOf(() => parseConfig(withCluster({ url: "redis://h", key_prefix: "p", passwd: "x" }), FILE))[0]).toMatch(/: global\.cluster\.passwd: unknown key/);
    expect(problemsOf(() => parseConfig(withCluster({ url: "redis://h" }), FILE))[0]).toMatch(/: global\.cluster\.key_prefix: required key is missing/);
    expect(problemsOf(() => parseConfig(withCluster({ url: "redis://h", key_prefix: "a b" }), FILE))[0]).toMatch(/: global\.cluster\.key_prefix: must be a mapping with url/);
    expect(problemsOf(() => parseConfig(withCluster({ url: "redis-sentinel://h:1", key_prefix: "p" }), FILE))[0]).toMatch(/ends in \/MASTER-NAME/);
  });
});
