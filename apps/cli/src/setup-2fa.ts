import { chmodSync, existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { checkPrivateDir, makeDirs, writeFileDurably } from "@knockport/durable-file";
import { Secret, TOTP } from "otpauth";
import QRCode from "qrcode";
import qrcodeTerminal from "qrcode-terminal";
import {
  TWO_FACTOR_MAX_INTERVAL,
  TWO_FACTOR_MIN_INTERVAL,
  SERVER_USER,
  UsageError,
  loadConfig,
  parseGroup,
  parsePasswd,
  twoFactorFileId,
  type KnockportConfig,
} from "@knockport/config";


export const SETUP_2FA_USAGE = `Usage: knockport setup-2fa -k ACCESS_KEY_HTTP [-c CONFIG] [-i SECONDS] [--label NAME] [--force]

Turns on 2FA (TOTP) for one step-1 key: from then on a knock with that key needs a one-time
6-digit token from an authenticator app in the form field "token".

  -k, --key KEY          a step-1 key (access_key_http) of the config; or set KNOCKPORT_HTTP_KEY
                         instead, so the key stays out of the process list and shell history
  -c, --config FILE      KnockPort config (default /etc/knockport/config.yaml)
  -i, --interval N       TOTP period in seconds (default 30; most authenticator apps only know 30)
      --label NAME       name shown in the authenticator as "KnockPort:NAME" (default: the app name)
      --force            replace an existing 2FA file (the old authenticator entry stops working)
      --no-qr            do not print the terminal QR code

Writes <2fa_config_folder>/<id>.json (the secret) and <id>_qr.png next to it, mode 0600, or 0640
in a root:knockport 0750 folder (the server's group reads them; the folder must not be writable by
it), where <id> is the first 32 hex digits of HMAC-SHA256(key "knockport-2fa-file-v1", message
ACCESS_KEY_HTTP) so no file name reveals the key. Prints the otpauth:// URI and a QR code to scan. Delete the .json
file to turn 2FA off again for that key (no restart needed).
`;

export const DEFAULT_SERVER_CONFIG = "/etc/knockport/config.yaml";

export interface SetupTwoFactorOptions {
  configFile: string;
  accessKey: string;
  interval: number;
  label: string | undefined;
  force: boolean;
  qr: boolean;
  out: (line: string) => void;
  /** The account the server runs as (knockport run --user, the unit's User=); null: none. Default: user knockport from /etc/passwd. */
  serverAccount?: ServerAccount | null;
}

export interface ServerAccount {
  name: string;
  gid: number;
  /** Its primary group's name. */
  group: string;
}

/** SERVER_USER as /etc/passwd and /etc/group know it, or null when there is no such user. */
export function lookupServerAccount(passwd = readFileSync("/etc/passwd", "utf8"), group = readFileSync("/etc/group", "utf8")): ServerAccount | null {
  const user = parsePasswd(passwd).find((u) => u.name === SERVER_USER);
  if (user === undefined) return null;
  return { name: user.name, gid: user.gid, group: parseGroup(group).find((g) => g.gid === user.gid)?.name ?? String(user.gid) };
}

export interface SetupTwoFactorResult {
  app: string;
  jsonFile: string;
  pngFile: string;
  uri: string;
}

const LABEL = /^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$/;

export function parseInterval(value: string | undefined): number {
  if (value === undefined) return 30;
  const n = Number(value);
  if (!/^\d{1,4}$/.test(value) || n < TWO_FACTOR_MIN_INTERVAL || n > TWO_FACTOR_MAX_INTERVAL) {
    throw new UsageError(`-i/--interval: must be a number of seconds ${TWO_FACTOR_MIN_INTERVAL}-${TWO_FACTOR_MAX_INTERVAL} (got "${value}"); 30 suits every authenticator app`);
  }
  return n;
}

/** The app whose access_key_http holds `key`; a usage error that names the fix otherwise. Never echoes the key. */
export function appForStep1Key(config: KnockportConfig, key: string): string {
  const app = config.apps.find((a) => a.accessKeysHttp.includes(key));
  if (app) return app.name;
  const step2 = config.apps.find((a) => a.accessKeysHttps.includes(key));
  if (step2) {
    throw new UsageError(
      `-k/--key: that is a step-2 key (access_key_https) of app "${step2.name}" in ${config.file}; 2FA protects step 1, pass the app's access_key_http`,
    );
  }
  throw new UsageError(
    `-k/--key: no app in ${config.file} has that key in access_key_http (the key is not shown); pass a step-1 key of the config, or the right -c/--config`,
  );
}


function terminalQr(text: string): string {
  let qr = "";
  // generate() calls back synchronously; it only builds a string, so it needs no TTY
  qrcodeTerminal.generate(text, { small: true }, (s) => {
    qr = s;
  });
  return qr;
}

export async function setupTwoFactor(opts: SetupTwoFactorOptions): Promise<SetupTwoFactorResult> {
  const config = loadConfig(opts.configFile);
  const app = appForStep1Key(config, opts.accessKey);
  const name = opts.label ?? app;
  if (!LABEL.test(name)) {
    throw new UsageError(`--label: 1-64 characters A-Z a-z 0-9 space . _ @ - starting with a letter or digit (got ${JSON.stringify(name)})`);
  }
  if (name.includes(opts.accessKey) || (name.length >= 10 && opts.accessKey.includes(name))) {
    throw new UsageError("--label: must not contain the access key (the label is shown in the authenticator app)");
  }

  const folder = config.global.twoFactorFolder;
  try {
    makeDirs(folder, 0o700);
  } catch (err) {
    throw new UsageError(
      `${folder} (2fa_config_folder of ${config.file}): cannot create it (${(err as NodeJS.ErrnoException).code}); create it or run as a user who may`,
    );
  }
  let st = statSync(folder);
  if (!st.isDirectory()) throw new UsageError(`${folder} (2fa_config_folder): is not a folder; fix 2fa_config_folder in ${config.file}`);
  try {
    // The server only reads the secrets: the folder belongs to root (or whoever runs this), never to the server's user.
    checkPrivateDir(folder, { label: `2fa_config_folder`, fix: `chown root:knockport ${folder} && chmod 0750 ${folder}` });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if ((st.mode & 0o007) !== 0) {
    chmodSync(folder, st.mode & 0o770);
    opts.out(`note: ${folder} was readable by every user; it is now mode ${(st.mode & 0o770).toString(8).padStart(4, "0")}`);
    st = statSync(folder);
  }
  // A group-readable folder (root:knockport 0750) shares the secrets with its group (the server), no one else.
  const mode = (st.mode & 0o050) === 0o050 ? 0o640 : 0o600;
  const owner = process.getuid?.() === 0 ? { uid: 0, gid: st.gid } : undefined;

  const id = twoFactorFileId(opts.accessKey);
  const jsonFile = join(folder, `${id}.json`);
  const pngFile = join(folder, `${id}_qr.png`);
  if (existsSync(jsonFile) && !opts.force) {
    throw new UsageError(`${jsonFile}: 2FA is already set up for that key; pass --force to replace it (the old authenticator entry then stops working)`);
  }

  const secret = new Secret({ size: 20 }); // 160 bits, RFC 4226's recommended length
  const totp = new TOTP({ issuer: "KnockPort", label: name, algorithm: "SHA1", digits: 6, period: opts.interval, secret });
  const uri = totp.toString();
  const content = {
    secret: secret.base32,
    interval: opts.interval,
    label: `KnockPort:${name}`,
    app,
    created: new Date().toISOString(),
  };
  const png = await QRCode.toBuffer(uri, { type: "png", errorCorrectionLevel: "M", margin: 4, scale: 6 });
  // PNG first: the JSON switches 2FA on, so it appears only once everything else is in place
  writeFileDurably(pngFile, png, { mode, owner });
  writeFileDurably(jsonFile, `${JSON.stringify(content, null, 2)}\n`, { mode, owner });

  const out = opts.out;
  out(`2FA is on for a step-1 key of app "${app}" (${config.file}).`);
  const modeText = mode.toString(8).padStart(4, "0");
  out(`  secret file: ${jsonFile} (mode ${modeText}${owner ? `, owner root, group ${owner.gid} like the folder` : ""})`);
  out(`  QR code:     ${pngFile}`);
  const server = opts.serverAccount !== undefined ? opts.serverAccount : lookupServerAccount();
  if (server === null || mode !== 0o640 || st.gid !== server.gid) {
    const group = server?.group ?? SERVER_USER;
    const fix = `chown root:${group} ${folder} && chmod 0750 ${folder} && chgrp ${group} ${folder}/* && chmod 0640 ${folder}/*`;
    out(
      server === null
        ? `  note: there is no user ${SERVER_USER} yet, whom the server runs as (knockport run --user, the systemd unit's User=); create it: useradd --system --user-group --no-create-home --shell /usr/sbin/nologin ${SERVER_USER}, then let it read the secrets: ${fix}`
        : `  note: the server's user ${server.name} (group ${server.group}) cannot read these files (folder group ${st.gid}, mode ${(st.mode & 0o777).toString(8).padStart(4, "0")}); let it: ${fix}`,
    );
  }
  if (existsSync(join(folder, `${opts.accessKey}.json`))) {
    out(`  note: a file under the original's naming (<access_key>.json) also exists for this key; the new file wins, delete the old one`);
  }
  out("");
  out(`Add it to an authenticator app (label KnockPort:${name}, ${opts.interval} s period${opts.interval === 30 ? "" : "; many apps only support 30 s"}):`);
  out(`  ${uri}`);
  if (opts.qr) {
    out("");
    out(terminalQr(uri));
  }
  out("");
  out("From now on step 1 with this key needs the current code, each code once:");
  out(`  knockport knock ... --totp-prompt      or      curl -d "app=${app}&access_key=<key>&token=<code>" -m 1 http://<host>:<port><http_post_path>`);
  out(`Turn 2FA off again: rm ${jsonFile}`);
  return { app, jsonFile, pngFile, uri };
}
