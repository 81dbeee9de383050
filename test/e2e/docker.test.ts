// End-to-end: a port published by a real dockerd (`docker run -p 9100:80`), configured as a local app
// (`port: 9100`). Docker DNATs it in prerouting and the packet takes the forward path to the container,
// never the input chain; KnockPort's guard before DNAT must still keep it closed until a knock. dockerd
// runs in srv (nsenter --net), with IPv6 DNAT (ip6tables) on; the container is busybox httpd serving a
// random token, so "open" means the container itself answered.
import { afterAll, beforeAll, beforeEach, expect, it } from "vitest";
import { describeKnockport, type KnockportOptions } from "./describe-knockport.js";
import { e2eFirewalls, states, type Family } from "./harness.js";
import { Dockerd } from "./dockerd.js";
import { randomTag, type AppSpec, type HostName } from "./testbed.js";

const DURATION_S = 20;
const PUBLIC_PORT = 9100;
const IMAGE = "kp-busybox:e2e";
const CONTAINER = "kp-web";

const stack: KnockportOptions = {
  duration: DURATION_S,
  step2HttpsDuration: 5,
  rateLimitPerMinute: 1000,
  // nothing of ours may listen on 9100: docker-proxy does
  echo: false,
  apps: (_topo, base) => {
    const [ssh, vpn] = base.apps;
    if (ssh === undefined || vpn === undefined) throw new Error("example config lacks apps");
    return [{ ...ssh, name: "web", port: PUBLIC_PORT }, vpn];
  },
};

describeKnockport("knockport end to end ($firewall): a port published by Docker", e2eFirewalls().filter((f) => f !== "vyos"), stack, (h) => {
  const token = `kp-docker-${randomTag()}`;
  let dockerd: Dockerd;
  let web: AppSpec;

  beforeAll(async () => {
    web = h.ssh;
    dockerd = new Dockerd({ netns: h.topo.names.srv, tag: h.topo.suffix, ipv6Cidr: "fd00:d0c::/64" });
    try {
      await dockerd.start();
      await dockerd.importBusybox(IMAGE, `${token}\n`);
      // --stop-signal KILL: busybox httpd as PID 1 ignores SIGTERM, and every stop would wait 10 s.
      await dockerd.docker([
        "run", "-d", "--name", CONTAINER, "--restart", "always", "--stop-signal", "KILL",
        "-p", `${PUBLIC_PORT}:80`, IMAGE, "/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www",
      ]);
    } catch (e) {
      throw new Error(`${String(e)}\n${dockerd.log}`);
    }
  });
  afterAll(async () => {
    await dockerd?.destroy();
  });
  beforeEach((ctx) => {
    ctx.onTestFailed(() => console.error(`---- dockerd log ----\n${dockerd?.log ?? "(none)"}`));
  });

  /** "open" when the container's httpd answers with the token from `host`, else "closed". */
  const fetchWeb = async (host: HostName, family: Family): Promise<"open" | "closed"> => {
    const ip = h.srvIp(family);
    const url = family === 6 ? `http://[${ip}]:${PUBLIC_PORT}/` : `http://${ip}:${PUBLIC_PORT}/`;
    const r = await h.topo.exec(host, "curl", ["-s", "-g", "-m", "1", url], { timeoutMs: 10_000 });
    return r.exitCode === 0 && r.stdout.trim() === token ? "open" : "closed";
  };
  const everyone = (): Promise<Record<string, string>> =>
    states({
      "cli v4": () => fetchWeb("cli", 4),
      "cli v6": () => fetchWeb("cli", 6),
      "cli2 v4": () => fetchWeb("cli2", 4),
      "cli2 v6": () => fetchWeb("cli2", 6),
    });
  const knockerOnly = { "cli v4": "open", "cli v6": "open", "cli2 v4": "closed", "cli2 v6": "closed" };
  const nobody = { "cli v4": "closed", "cli v6": "closed", "cli2 v4": "closed", "cli2 v6": "closed" };

  /** Bounded wait until the container answers srv itself again (after a restart). */
  const waitServing = async (): Promise<void> => {
    const until = Date.now() + 20_000;
    while (Date.now() < until) {
      if ((await fetchWeb("srv", 4)) === "open" && (await fetchWeb("srv", 6)) === "open") return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the container does not answer srv within 20 s:\n${dockerd.log}`);
  };

  it("control: the container serves the published port (srv reaches it) through Docker's DNAT", async () => {
    await waitServing();
    const nat4 = await h.topo.exec("srv", "iptables-nft", ["-t", "nat", "-S", "DOCKER"]);
    const nat6 = await h.topo.exec("srv", "ip6tables-nft", ["-t", "nat", "-S", "DOCKER"]);
    expect(nat4.stdout, "dockerd's IPv4 DNAT").toMatch(new RegExp(`--dport ${PUBLIC_PORT} .*-j DNAT`));
    expect(nat6.stdout, "dockerd's IPv6 DNAT").toMatch(new RegExp(`--dport ${PUBLIC_PORT} .*-j DNAT`));
  });

  it("before any knock: closed for the knocker and the bystander, IPv4 and IPv6", async () => {
    expect(await everyone()).toEqual(nobody);
  });

  /** Knocks from cli in both families; returns the earliest end of the two leases (epoch ms). */
  const knockBoth = async (): Promise<number> => {
    const v4 = await h.fullKnock("cli", web, 4);
    await h.fullKnock("cli", web, 6);
    return v4.sent + DURATION_S * 1000;
  };
  /** The states, checked while both leases still run (a restart slower than the lease fails here, not as "closed"). */
  const everyoneWithin = async (leaseEnd: number): Promise<Record<string, string>> => {
    const got = await everyone();
    expect(Date.now(), "the check ran after the lease ended: the restart took longer than the lease").toBeLessThan(leaseEnd);
    return got;
  };

  it("after a knock: open for the knocker only", async () => {
    const end = await knockBoth();
    expect(await everyoneWithin(end)).toEqual(knockerOnly);
  });

  // Each restart gets a fresh lease: on this shared machine a dockerd start alone can take 5-10 s.
  it("dockerd restarting mid-lease (it rewrites its chains) changes nothing", async () => {
    const end = await knockBoth();
    await dockerd.restart();
    await waitServing();
    expect(await everyoneWithin(end)).toEqual(knockerOnly);
  });

  it("the container restarting mid-lease changes nothing", async () => {
    const end = await knockBoth();
    await dockerd.docker(["restart", CONTAINER]);
    await waitServing();
    expect(await everyoneWithin(end)).toEqual(knockerOnly);
  });

  it(`closed again after the lease (${DURATION_S} s) expires`, async () => {
    await h.waitExpired(h.leaseKey("cli", 4, web.name), h.leaseKey("cli", 6, web.name));
    expect(await everyone()).toEqual(nobody);
  });

  it("teardown leaves no dockerd process, mount, cgroup or directory behind", async () => {
    await dockerd.destroy();
    expect(dockerd.leftovers()).toEqual([]);
  });
});
