#!/usr/bin/env bash
# swtpm/setup.sh DIR [--banks sha1,sha256] [--no-certs]
#
# Make a fresh TPM 2.0 state in DIR/state with an RSA-2048 EK (persistent 0x81010001,
# certificate in NV 0x01c00002) and an ECC EK (swtpm: P-384 at 0x81010016, certificate in
# NV 0x01c00016), the EK certificates issued by a private local CA kept in DIR/ca.
# Nothing is written outside DIR. Prints the CA chain file (root + intermediate, PEM) on
# stdout. Existing state in DIR/state is overwritten; an existing CA in DIR/ca is reused.
set -eu
usage() { echo "usage: $0 DIR [--banks sha1,sha256] [--no-certs]" >&2; exit 2; }
[ $# -ge 1 ] || usage
case "$1" in -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
dir=$1; shift
banks=sha1,sha256
certs=1
while [ $# -gt 0 ]; do
	case "$1" in
	--banks) [ $# -ge 2 ] || usage; banks=$2; shift 2 ;;
	--no-certs) certs=0; shift ;;
	*) usage ;;
	esac
done
command -v swtpm_setup >/dev/null || { echo "setup.sh: swtpm_setup not found (apt-get install swtpm-tools)" >&2; exit 1; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
mkdir -p "$dir/state" "$dir/ca"
chmod 700 "$dir/ca"

cat >"$dir/localca.conf" <<CONF
statedir = $dir/ca
signingkey = $dir/ca/signkey.pem
issuercert = $dir/ca/issuercert.pem
certserial = $dir/ca/certserial
CONF
cat >"$dir/localca.options" <<CONF
--platform-manufacturer sluice
--platform-version 1.0
--platform-model swtpm
CONF
cat >"$dir/swtpm_setup.conf" <<CONF
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = $dir/localca.conf
create_certs_tool_options = $dir/localca.options
active_pcr_banks = $banks
CONF

args=(--tpm2 --tpmstate "$dir/state" --config "$dir/swtpm_setup.conf" --overwrite --pcr-banks "$banks")
if [ $certs = 1 ]; then
	args+=(--create-ek-cert --create-platform-cert --lock-nvram)
else
	args+=(--createek)
fi
# swtpm_setup reads XDG/HOME for defaults; keep it inside DIR.
if ! out=$(HOME="$dir" XDG_CONFIG_HOME="$dir" timeout 60 swtpm_setup "${args[@]}" 2>&1); then
	echo "setup.sh: swtpm_setup failed:" >&2
	echo "$out" >&2
	exit 1
fi
if [ $certs = 1 ]; then
	cat "$dir/ca/swtpm-localca-rootca-cert.pem" "$dir/ca/issuercert.pem" >"$dir/ca/chain.pem"
	echo "$dir/ca/chain.pem"
fi
