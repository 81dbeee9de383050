export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** The entries of /etc/group text; malformed lines are passed over. */
export function parseGroup(text: string): GroupEntry[] {
  return text
    .split("\n")
    .map((l) => l.split(":"))
    .filter((f) => f.length >= 4 && f[0] !== "" && /^\d+$/.test(f[2] ?? ""))
    .map((f) => ({
      name: f[0] as string,
      gid: Number(f[2]),
      members: (f[3] ?? "").split(",").map((m) => m.trim()).filter((m) => m !== ""),
    }));
}
