import { describe, expect, it } from "vitest";
import { encodeFrame, FrameDecoder, FrameTooLargeError, MAX_FRAME_BYTES } from "../src/index.js";

const b = (text: string): Buffer => Buffer.from(text, "utf8");

describe("FrameDecoder", () => {
  it("the default limit is 64 KiB", () => {
    expect(MAX_FRAME_BYTES).toBe(64 * 1024);
  });

  it("returns one frame per newline and keeps the rest for the next chunk", () => {
    const d = new FrameDecoder();
    expect(d.push(b('{"a":1}\n'))).toEqual(['{"a":1}']);
    expect(d.push(b('{"b":'))).toEqual([]);
    expect(d.bufferedBytes).toBe(5);
    expect(d.push(b("2}"))).toEqual([]);
    expect(d.push(b('\n{"c":3}\n'))).toEqual(['{"b":2}', '{"c":3}']);
    expect(d.bufferedBytes).toBe(0);
  });

  it("splits a frame at every possible byte boundary", () => {
    const text = `${JSON.stringify({ jsonrpc: "2.0", id: 7, method: "open", params: { step: 1, app: "ssh", ip: "2001:db8::7" } })}\n`;
    const bytes = b(text);
    for (let cut = 0; cut <= bytes.length; cut += 1) {
      const d = new FrameDecoder();
      const frames = [...d.push(bytes.subarray(0, cut)), ...d.push(bytes.subarray(cut))];
      expect(frames).toEqual([text.slice(0, -1)]);
    }
  });

  it("decodes a frame fed one byte at a time", () => {
    const d = new FrameDecoder();
    const frames: string[] = [];
    for (const byte of b("abc\ndef\n")) frames.push(...d.push(Buffer.from([byte])));
    expect(frames).toEqual(["abc", "def"]);
  });

  it("returns many frames from one chunk, in order", () => {
    const messages = Array.from({ length: 500 }, (_, i) => ({ jsonrpc: "2.0" as const, id: i, result: { closed: i } }));
    const d = new FrameDecoder();
    const frames = d.push(b(messages.map((m) => encodeFrame(m)).join("")));
    expect(frames.map((f) => JSON.parse(f))).toEqual(messages);
    expect(d.bufferedBytes).toBe(0);
  });

  it("returns empty frames for blank lines (the caller decides what they mean)", () => {
    expect(new FrameDecoder().push(b("\n\nx\n"))).toEqual(["", "", "x"]);
  });

  it("decodes a multibyte UTF-8 character split across chunks", () => {
    const text = "ünïcødé €𝄞 ok";
    const bytes = b(`${text}\n`);
    for (let cut = 1; cut < bytes.length; cut += 1) {
      const d = new FrameDecoder();
      expect([...d.push(bytes.subarray(0, cut)), ...d.push(bytes.subarray(cut))]).toEqual([text]);
    }
    // the 4-byte G clef split into four chunks
    const d = new FrameDecoder();
    const clef = b("𝄞\n");
    const frames: string[] = [];
    for (let i = 0; i < clef.length; i += 1) frames.push(...d.push(clef.subarray(i, i + 1)));
    expect(frames).toEqual(["𝄞"]);
  });

  it("copies what it keeps: the caller may reuse its chunk buffer", () => {
    const d = new FrameDecoder();
    const chunk = b("hello");
    d.push(chunk);
    chunk.fill(0x78); // "xxxxx"
    expect(d.push(b("\n"))).toEqual(["hello"]);
  });

  it("accepts a frame of exactly 64 KiB (one chunk, and split)", () => {
    const payload = "a".repeat(MAX_FRAME_BYTES);
    expect(new FrameDecoder().push(b(`${payload}\n`))).toEqual([payload]);
    const d = new FrameDecoder();
    expect(d.push(b(payload))).toEqual([]);
    expect(d.bufferedBytes).toBe(MAX_FRAME_BYTES);
    expect(d.push(b("\nnext\n"))).toEqual([payload, "next"]);
  });

  it("counts bytes, not characters", () => {
    const payload = "é".repeat(MAX_FRAME_BYTES / 2); // 2 bytes each: exactly 64 KiB
    expect(new FrameDecoder().push(b(`${payload}\n`))).toEqual([payload]);
    expect(() => new FrameDecoder().push(b(`${payload}é`))).toThrow(FrameTooLargeError);
  });

  it("throws FrameTooLargeError at 64 KiB + 1 without a newline", () => {
    const d = new FrameDecoder();
    expect(() => d.push(b("a".repeat(MAX_FRAME_BYTES + 1)))).toThrow(FrameTooLargeError);
  });

  it("throws when the bytes past the limit arrive in a later chunk", () => {
    const d = new FrameDecoder();
    d.push(b("a".repeat(MAX_FRAME_BYTES)));
    let caught: unknown;
    try {
      d.push(b("a"));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(FrameTooLargeError);
    expect((caught as FrameTooLargeError).code).toBe("FRAME_TOO_LARGE");
    expect((caught as FrameTooLargeError).limit).toBe(MAX_FRAME_BYTES);
  });

  it("throws for an over-long frame even when its newline is in the same chunk", () => {
    expect(() => new FrameDecoder().push(b(`${"a".repeat(MAX_FRAME_BYTES + 1)}\n`))).toThrow(FrameTooLargeError);
    const d = new FrameDecoder();
    d.push(b("a".repeat(MAX_FRAME_BYTES - 1)));
    expect(() => d.push(b("aa\n"))).toThrow(FrameTooLargeError);
  });

  it("applies a custom limit", () => {
    const d = new FrameDecoder(4);
    expect(d.push(b("abcd\n"))).toEqual(["abcd"]);
    expect(() => d.push(b("abcde"))).toThrow(FrameTooLargeError);
  });

  it("the limit is per frame, not per chunk", () => {
    const frame = "b".repeat(1000);
    const many = `${frame}\n`.repeat(200); // ~200 KB in one chunk
    expect(new FrameDecoder().push(b(many))).toHaveLength(200);
  });
});

describe("encodeFrame", () => {
  it("is one line of JSON ending in a newline, even with newlines inside strings", () => {
    const frame = encodeFrame({ jsonrpc: "2.0", id: 1, error: { code: -1, message: "a\nb" } });
    expect(frame.endsWith("\n")).toBe(true);
    expect(frame.indexOf("\n")).toBe(frame.length - 1);
    expect(new FrameDecoder().push(b(frame)).map((f) => JSON.parse(f))).toEqual([
      { jsonrpc: "2.0", id: 1, error: { code: -1, message: "a\nb" } },
    ]);
  });
});
