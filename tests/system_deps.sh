#!/usr/bin/env bash
# Installs the Debian packages that some tests need, and nothing else:
#   - slurm-wlm, slurmdbd, munge, mariadb-server: the real single-node SLURM cluster that
#     tests/slurm/cluster.sh starts for the @pytest.mark.slurm tests;
#   - chromium, chromium-driver, fonts-dejavu-core: the headless-browser check of the paper.
# Idempotent: a package already installed is not touched, and `apt-get update` runs only
# when something is missing, so a second run takes about a second.
# Without root or apt it prints a loud warning and exits 0: the tests that need these
# packages then skip (or fail) with a message that names what is missing.
set -euo pipefail

PACKAGES=(slurm-wlm slurmdbd munge mariadb-server chromium chromium-driver fonts-dejavu-core)

installed() {
    # dpkg-query prints "install ok installed" only for a fully installed package.
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

warn() {
    {
        echo "################################################################################"
        echo "# WARNING (tests/system_deps.sh): $1"
        echo "# Missing Debian packages: ${missing[*]}"
        echo "# Tests marked 'slurm' and 'browser' will skip or fail without them."
        echo "# Install them as root with:"
        echo "#   apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
        echo "################################################################################"
    } >&2
    exit 0
}

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
    for p in "${PACKAGES[@]}"; do
        installed "$p" || missing+=("$p")
    done
else
    missing=("${PACKAGES[@]}")
fi

if [ "${#missing[@]}" -eq 0 ]; then
    echo "system_deps: all present (${PACKAGES[*]})"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 || warn "apt-get not found: cannot install system packages."
[ "$(id -u)" -eq 0 ] || warn "not running as root (uid $(id -u)): cannot install system packages."

echo "system_deps: installing ${missing[*]}"
start=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Debian's maintainer scripts try to start services (munge, mariadb, slurm*); with no
# systemd/init they fail or start daemons we do not track. policy-rc.d exit 101 forbids
# any service start during the install; cluster.sh starts what it needs itself.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    made_policy=1
fi
trap '[ "$made_policy" -eq 1 ] && rm -f "$policy"' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/lmlab-system-deps.log 2>&1 || {
    tail -n 40 /tmp/lmlab-system-deps.log >&2
    echo "system_deps: apt-get install failed (full log: /tmp/lmlab-system-deps.log)" >&2
    exit 1
}
echo "system_deps: installed in $(($(date +%s) - start)) s"
