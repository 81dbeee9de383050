import type { IpAddress } from "@knockport/protocol";

/** One client address in one of our sets: `https_v4|6` or `svc_<app>_v4|6`, of the address's family. */
export interface SetElement {
  readonly set: string;
  readonly ip: IpAddress;
}

/** A timed grant: the kernel removes the element after `timeoutSeconds` (whole seconds, 1 s to 366 days). */
export interface GrantTarget extends SetElement {
  readonly timeoutSeconds: number;
}
