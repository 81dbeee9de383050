/** docs/events.md, generated from the event catalogue (`pnpm docs`); a unit test fails when the page is stale. */
import type { EventCatalogue } from "./event-types.js";
import { EVENTS_BY_PROCESS, type EventName } from "./events-apps.js";
import { EVENT_MEANINGS } from "./event-meanings.js";
import { markdownTable } from "./markdown.js";

const INTROS: Record<keyof typeof EVENTS_BY_PROCESS, string> = {
  "knockport-helper": "The root helper and its firewall backends (`journalctl -u knockport-helper`).",
  "knockport-server": "The knock server (`journalctl -u knockport-server`); each knock is one `knock.*` line.",
  "knockport-hooks": "The hooks runner (`journalctl -u knockport-hooks`).",
  "knockport-cluster-sync": "Lease fan-out between gateways (`journalctl -u knockport-cluster-sync`).",
};

function section(process: keyof typeof EVENTS_BY_PROCESS, events: EventCatalogue): string[] {
  const rows = Object.entries(events).map(([name, e]) => [
    `\`${name}\``,
    e.level,
    e.audit === true ? "yes" : "",
    Object.entries(e.fields).map(([f, t]) => (typeof t === "string" ? `\`${f}\`${t.endsWith("?") ? "?" : ""}: ${t.replace(/\?$/, "")}` : `\`${f}\`: ${t.map((v) => `\`${v}\``).join(" / ")}`)).join(", "),
    EVENT_MEANINGS[name as EventName],
  ]);
  return [`## ${process}`, "", INTROS[process], "", ...markdownTable(["Event", "Level", "Audit", "Fields", "Meaning"], rows), ""];
}

export function renderEventsPage(): string {
  return [
    "# Log events",
    "",
    "<!-- Generated from packages/protocol/src/events.ts, events-apps.ts and event-meanings.ts by `pnpm docs`; do not edit. -->",
    "",
    "Every KnockPort process logs JSON lines on stdout (journald keeps them): pino's `level` (20 debug, 30 info,",
    "40 warn, 50 error), `time` (ms since the epoch), `pid`, `hostname`, `msg`, and `event`, one of the names below,",
    "with the fields listed (`?`: not on every line). Audit lines (lease and firewall changes, hook runs) also carry",
    "`\"audit\":true`: `journalctl -u knockport-helper -o cat | jq 'select(.audit)'`. No line carries an access key, a",
    "token or a knock path. Refused knocks (`knock.refused`, `knock.rate_limited`) can feed fail2ban:",
    "[operations.md](operations.md#fail2ban).",
    "",
    ...Object.entries(EVENTS_BY_PROCESS).flatMap(([p, events]) => section(p as keyof typeof EVENTS_BY_PROCESS, events)),
  ].join("\n");
}
