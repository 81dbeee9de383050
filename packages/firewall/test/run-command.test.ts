import { describe, expect, it } from "vitest";
import { runCommand } from "../src/run-command.js";

const NODE = process.execPath;
const script = (code: string): string[] => ["-e", code];

describe("runCommand (argument arrays, never a shell)", () => {
  it("gives exit code, stdout and stderr without their final newline", async () => {
    const r = await runCommand(NODE, script("console.log('out'); console.error('err'); process.exit(3)"), { timeout: 10_000 });
    expect(r).toMatchObject({ exitCode: 3, stdout: "out", stderr: "err", failed: true, timedOut: false, isMaxBuffer: false, isTerminated: false });
  });

  it("writes input to stdin and reports success", async () => {
    const r = await runCommand(NODE, script("let s='';process.stdin.on('data',d=>s+=d).on('end',()=>process.stdout.write(s.toUpperCase()))"), { input: "flush\n", timeout: 10_000 });
    expect(r).toMatchObject({ exitCode: 0, stdout: "FLUSH", failed: false });
  });

  it("passes arguments as they are: no shell expands them", async () => {
    const r = await runCommand(NODE, [...script("process.stdout.write(process.argv[1])"), "$(id); *"], { timeout: 10_000, stdin: "ignore" });
    expect(r.stdout).toBe("$(id); *");
  });

  it("kills a command past its timeout", async () => {
    const started = Date.now();
    const r = await runCommand(NODE, script("setTimeout(() => {}, 60_000)"), { timeout: 300 });
    expect(r).toMatchObject({ timedOut: true, failed: true, exitCode: undefined, isTerminated: true, signal: "SIGTERM" });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("escalates to SIGKILL when SIGTERM is ignored (forceKillAfterDelay)", async () => {
    const r = await runCommand(NODE, script("process.on('SIGTERM', () => {}); setInterval(() => {}, 1000); console.log('up')"), { timeout: 500, forceKillAfterDelay: 300 });
    expect(r).toMatchObject({ timedOut: true, signal: "SIGKILL", failed: true });
  });

  it("stops a command whose output passes maxBuffer", async () => {
    const r = await runCommand(NODE, script("setInterval(() => process.stdout.write('x'.repeat(4096)), 1)"), { timeout: 10_000, maxBuffer: 64 * 1024 });
    expect(r).toMatchObject({ isMaxBuffer: true, failed: true, timedOut: false });
    expect(r.stdout.length).toBeLessThanOrEqual(64 * 1024);
  });

  it("reports a program that cannot start, without throwing", async () => {
    const r = await runCommand("/nonexistent/knockport-test-binary", [], { timeout: 1_000 });
    expect(r).toMatchObject({ failed: true, exitCode: undefined, isTerminated: false, timedOut: false });
    expect(r.stderr).toMatch(/ENOENT/);
    expect((r.cause as NodeJS.ErrnoException).code).toBe("ENOENT");
  });
});
