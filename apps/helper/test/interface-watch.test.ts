import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, parseConfig, type KnockportConfig } from "@knockport/config";
import { prepareInterfaces } from "../src/interfaces.js";
import { startInterfaceWatch } from "../src/interface-watch.js";
import { RecordingFirewall } from "./recording-firewall.js";

const silent = pino({ level: "silent" });

function config(global: Record<string, unknown>, vpnInterface = "ppp0"): KnockportConfig {
  return parseConfig(
    {
      global: { http_post_path: "/k-step-one", https_post_path: "/k-step-two", interface_ext: "eth0", ...global },
      vpn: { port: 1194, protocol: "udp", access_key_http: ["vpn-http-key-1"], access_key_https: ["vpn-https-key-1"], duration: 60, interface_ext: vpnInterface },
    },
    "test.yaml",
  );
}

/** A firewall that records which interfaces it was told are missing, at each install. */
class MissingAwareFirewall extends RecordingFirewall {
  missing: readonly string[] = [];
  readonly installs: (readonly string[])[] = [];
  setMissingInterfaces(names: readonly string[]): void {
    this.missing = [...names];
  }
  override async install(): Promise<void> {
    this.installs.push(this.missing);
  }
}

describe("prepareInterfaces / startInterfaceWatch", () => {
  let timer: NodeJS.Timeout | undefined;
  afterEach(() => clearInterval(timer));

  it("a missing interface that is not allowed fails closed and is logged as a config error; a backend that cannot fail closed refuses", () => {
    const fw = new MissingAwareFirewall();
    const lines: string[] = [];
    const log = pino({ level: "info" }, { write: (s: string) => void lines.push(s) });
    expect(prepareInterfaces(config({}), fw, log, () => ["lo", "eth0"])).toEqual(["ppp0"]);
    expect(fw.missing, "its apps' ports are rendered dropped everywhere").toEqual(["ppp0"]);
    expect(fw.installs).toEqual([]);
    expect(lines.join("")).toMatch(/"event":"interface.unknown".*vpn\.interface_ext: interface ppp0 does not exist on this host \(it has lo, eth0\)/);
    expect(() => prepareInterfaces(config({}), new RecordingFirewall(), silent, () => ["lo", "eth0"])).toThrow(ConfigError);
    expect(() => prepareInterfaces(config({}), new RecordingFirewall(), silent, () => ["lo", "eth0"])).toThrow(/vpn\.interface_ext: interface ppp0 does not exist on this host/);
  });

  it("an allowed missing interface is handed to the backend; a backend that cannot fail closed is refused", () => {
    const fw = new MissingAwareFirewall();
    expect(prepareInterfaces(config({ allow_missing_interfaces: ["ppp0"] }), fw, silent, () => ["lo", "eth0"])).toEqual(["ppp0"]);
    expect(fw.missing).toEqual(["ppp0"]);
    expect(() => prepareInterfaces(config({ allow_missing_interfaces: ["ppp0"] }), new RecordingFirewall(), silent, () => ["lo", "eth0", "ppp0"])).toThrow(
      /global\.allow_missing_interfaces needs --firewall-type nftables/,
    );
  });

  it("re-applies once when the interface appears and once when it goes, with the backend told each time", async () => {
    const cfg = config({ allow_missing_interfaces: ["ppp0"] });
    const fw = new MissingAwareFirewall();
    let present = ["lo", "eth0"];
    const initial = prepareInterfaces(cfg, fw, silent, () => present);
    const reasons: string[] = [];
    timer = startInterfaceWatch({ config: cfg, firewall: fw, log: silent, initial, list: () => present, intervalMs: 10, reinstall: async () => void (reasons.push("r"), await fw.install()) });
    const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 60));
    await settle();
    expect(fw.installs, "nothing changed: no re-apply").toEqual([]);
    present = ["lo", "eth0", "ppp0"];
    await settle();
    expect(fw.installs).toEqual([[]]);
    present = ["lo", "eth0"];
    await settle();
    expect(fw.installs).toEqual([[], ["ppp0"]]);
    expect(reasons).toHaveLength(2);
  });

  it("no watch without allow_missing_interfaces", () => {
    expect(startInterfaceWatch({ config: config({}, "eth0"), firewall: new MissingAwareFirewall(), log: silent, initial: [], reinstall: async () => undefined })).toBeUndefined();
  });
});
