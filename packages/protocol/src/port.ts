declare const portBrand: unique symbol;
/** A TCP/UDP port number 1-65535. Only `parsePort` makes one. */
export type Port = number & { readonly [portBrand]: true };

export function parsePort(value: unknown): Port | undefined {
  return typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= 65535
    ? (value as Port)
    : undefined;
}

export type TransportProtocol = "tcp" | "udp";
