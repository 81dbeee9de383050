/** `knockport knock --help` and the exit codes it documents. */
import { CLI_ERRORS, ROOT_ERRORS } from "@knockport/protocol/errors";

export const KNOCK_USAGE = `Usage: knockport knock --host HOST --app APP --http-path PATH --https-path PATH [options]

Knocks both steps from this machine: step 1 (stealth HTTP, gets no answer by design), then step 2
(HTTPS), then optionally checks that the service port answers.

  --host HOST            server name or address (one address is picked and used for every step)
  --app APP              app name from the server's config
  --http-key KEY         step-1 key (access_key_http)    } better in a --config file or the
  --https-key KEY        step-2 key (access_key_https)   } environment: keep keys off command lines
  --http-path PATH       step-1 path (global.http_post_path)
  --https-path PATH      step-2 path (global.https_post_path)
  --http-port N          step-1 port (default 8080)
  --https-port N         step-2 port (default 8443)
  --token CODE           current 6-digit 2FA code (one-time)
  --totp-prompt          ask for the 2FA code (TTY), or read it from the first line of stdin
  --ca FILE              trust this CA/certificate (PEM) for step 2 instead of the system store
  --tls-name NAME        name the certificate must carry (default HOST when it is a name)
  --insecure             do not verify the step-2 certificate (tests only)
  --check-port P[/udp]   afterwards, confirm the service port answers (tcp by default)
  -4, -6                 use IPv4 / IPv6 only
  --config FILE          client settings file (KEY=VALUE lines, names as the variables below)
  --step1-wait MS        how long step 1's connection is kept before it is reset (default 1000)
  --step2-timeout MS     how long to keep trying to reach the HTTPS port (default 5000)
  --keep                 stay running and knock again before the lease ends (at ~75% of it), at
                         once when this machine's address towards the server changes, with growing
                         pauses after failures; stops on SIGINT/SIGTERM (no 2FA: codes work once)
  --probe-interval S     with --keep and a TCP --check-port behind a NAT (the server saw another
                         address than this machine's own): try the service every S seconds and
                         knock at once when it stops answering (default 10; 0: never)
  --revoke               with --keep: close the lease when stopped; alone: close it now
  -h, --help             show this help

Every setting can come from the environment or the --config file (a flag wins over the
environment, which wins over the file): KNOCKPORT_HOST, KNOCKPORT_APP, KNOCKPORT_HTTP_KEY,
KNOCKPORT_HTTPS_KEY, KNOCKPORT_HTTP_PATH, KNOCKPORT_HTTPS_PATH, KNOCKPORT_HTTP_PORT,
KNOCKPORT_HTTPS_PORT, KNOCKPORT_CA, KNOCKPORT_TLS_NAME, KNOCKPORT_INSECURE (1), KNOCKPORT_CHECK_PORT;
KNOCKPORT_CONFIG names the file. The file should be mode 0600.

Exit codes:
  0  knocked (and --check-port answered)
  1  unexpected error
  2  bad flags or settings
  3  step 1 could not be sent (name not found, HTTP knock port unreachable or refused)
  4  the HTTPS port stayed closed: step 1 was refused (app, key, token or path wrong, token
     already used) or came too late, the port is blocked on the way, or the server/helper is down
  5  step 2 refused (403: wrong app or HTTPS key, or not the key paired with step 1's; 404: path)
  6  the HTTPS certificate could not be verified (use --ca FILE, --tls-name NAME, or --insecure)
  7  another answer (400 bad form, 429 rate limited, 500 server or helper error, ...)
  8  knocked, but --check-port found the service port closed or silent
`;

export const EXIT = {
  OK: 0,
  UNEXPECTED: 1,
  USAGE: ROOT_ERRORS.USAGE.exit,
  STEP1_UNREACHABLE: CLI_ERRORS.KNOCK_STEP1_UNREACHABLE.exit,
  STEP2_UNREACHABLE: CLI_ERRORS.KNOCK_STEP2_UNREACHABLE.exit,
  STEP2_REFUSED: CLI_ERRORS.KNOCK_STEP2_REFUSED.exit,
  TLS: CLI_ERRORS.KNOCK_TLS.exit,
  OTHER_ANSWER: CLI_ERRORS.KNOCK_OTHER_ANSWER.exit,
  CHECK_FAILED: CLI_ERRORS.KNOCK_CHECK_FAILED.exit,
} as const;

