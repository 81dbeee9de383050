/** --help lines for the WAF flags, shared by the helper's, the server's and `knockport run`'s usage. */
export const WAF_FLAGS_USAGE = `      --waf-http-port N     WAF mode: public HTTP port nginx listens on (overrides global.waf_http_port);
                            the stealth step-1 rules move there, KnockPort's own ports are dropped
                            on interface_ext (nginx on this host proxies to them)
      --waf-https-port N    WAF mode: public HTTPS port nginx listens on (overrides global.waf_https_port);
                            step 1 opens this port
      --waf-trusted-ips LIST
                            WAF mode: comma-separated addresses/networks whose X-Real-IP /
                            X-Forwarded-For is believed; repeatable, added to global.waf_trusted_ips
                            (default when none is named: 127.0.0.1,::1)`;
