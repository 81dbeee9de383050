import { MAX_FRAME_BYTES } from "./methods.js";

/** Standard JSON-RPC 2.0 error codes. */
export const JSONRPC_ERRORS = {
  PARSE_ERROR: { code: -32700, message: "Parse error" },
  INVALID_REQUEST: { code: -32600, message: "Invalid Request" },
  METHOD_NOT_FOUND: { code: -32601, message: "Method not found" },
  INVALID_PARAMS: { code: -32602, message: "Invalid params" },
  INTERNAL_ERROR: { code: -32603, message: "Internal error" },
} as const;

export type RequestId = string | number;

export interface RpcRequest {
  jsonrpc: "2.0";
  id: RequestId;
  method: string;
  params?: unknown;
}
export interface RpcErrorObject {
  code: number;
  message: string;
  data?: { name?: string; detail?: string };
}
/** A message without id that expects no answer (the helper's `watch` events). */
export interface RpcNotification {
  jsonrpc: "2.0";
  method: string;
  params: unknown;
}
export type RpcResponse =
  | { jsonrpc: "2.0"; id: RequestId | null; result: unknown }
  | { jsonrpc: "2.0"; id: RequestId | null; error: RpcErrorObject };

export function encodeFrame(message: RpcRequest | RpcResponse | RpcNotification): string {
  return `${JSON.stringify(message)}\n`;
}

export class FrameTooLargeError extends Error {
  readonly code = "FRAME_TOO_LARGE";
  constructor(readonly limit: number) {
    super(`frame exceeds ${limit} bytes`);
  }
}

/**
 * Splits a byte stream into newline-terminated frames. A frame that grows past the limit before
 * its newline throws: the stream can no longer be trusted to resynchronise, so the caller closes.
 */
export class FrameDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly limit = MAX_FRAME_BYTES) {}

  push(chunk: Buffer): string[] {
    const frames: string[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(0x0a, start); nl >= 0; nl = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, nl);
      if (this.pendingBytes + piece.length > this.limit) throw new FrameTooLargeError(this.limit);
      this.pending.push(piece);
      frames.push(Buffer.concat(this.pending).toString("utf8"));
      this.pending = [];
      this.pendingBytes = 0;
      start = nl + 1;
    }
    const rest = chunk.subarray(start);
    if (rest.length > 0) {
      if (this.pendingBytes + rest.length > this.limit) throw new FrameTooLargeError(this.limit);
      // copy: the caller's chunk buffer may be reused
      this.pending.push(Buffer.from(rest));
      this.pendingBytes += rest.length;
    }
    return frames;
  }

  get bufferedBytes(): number {
    return this.pendingBytes;
  }
}
