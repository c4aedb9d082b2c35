#!/usr/bin/env bash
# Installs everything the svcnet test suite needs on a fresh Debian machine
# and runs the whole suite. This is the README's test command and what CI
# (.ci/run) calls.
set -euo pipefail
cd "$(dirname "$0")"

need_apt=()
for pkg_cmd in curl:curl python3:python3 ip:iproute2 dig:dnsutils nft:nftables iptables-restore:iptables conntrack:conntrack script:bsdutils setpriv:util-linux openssl:openssl; do
  cmd=${pkg_cmd%%:*}; pkg=${pkg_cmd##*:}
  command -v "$cmd" >/dev/null 2>&1 || need_apt+=("$pkg")
done
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test.sh: installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}"
fi

# The Python Kubernetes client, in a private venv so the system stays clean.
venv=target/pyenv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import kubernetes' >/dev/null 2>&1; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'kubernetes>=30'
fi
export SVCNET_TEST_PYTHON="$PWD/$venv/bin/python"

for v in 1.27 1.33; do
  [ -x "/usr/lib/google-cloud-sdk/bin/kubectl.$v" ] || echo "test.sh: warning: kubectl $v is missing; tests that use it will fail" >&2
done
command -v kubectl >/dev/null || { echo "test.sh: kubectl is required (/usr/bin/kubectl)" >&2; exit 1; }

cargo test --workspace --locked "$@"
