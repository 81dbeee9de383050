/** The --help lines of BACKEND_FLAGS (a module of its own: loaded only for --help). */
export const BACKEND_FLAGS_USAGE = `      --firewall-type TYPE  nftables (default), iptables (ipset + KNOCKPORT-* chains) or vyos
                            (nftables plus accepts in VyOS's named chains, bootstrapped via vbash)
      --vbash PATH          vyos: vbash to run the bootstrap with (default: vbash on PATH)
      --iptables-binary B   iptables backend: auto (default: the distribution's iptables), nft,
                            legacy, or an absolute path such as /usr/sbin/iptables-legacy
`;

export const CUSTOM_CHAINS_USAGE = `Custom nftables table and chains (nftables only; for a host whose own ruleset must keep control):
      --nftables-table-filter NAME
                            put KnockPort's sets and chains (all named knockport_*) into the
                            existing table "inet NAME" instead of its own table inet knockport,
                            with one jump from each chain below; nothing else of the table changes
      --nftables-chain-input NAME
                            that table's base chain hooked at input to jump from (default input)
      --nftables-chain-forward NAME
                            its base chain hooked at forward (default forward; forwarded apps only)
      --nftables-chain-output NAME
                            its base chain hooked at output to jump from; without it KnockPort's
                            output rules are a base chain of its own in that table
`;
