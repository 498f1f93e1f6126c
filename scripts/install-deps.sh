#!/bin/bash
# Install the Debian 12 packages gpukeeper needs to build, run and test.
#
# Idempotent: only packages that are not installed yet are installed, and the
# package lists are refreshed (apt-get update) only when something is
# missing, so a second run on a ready machine does nothing and needs no
# network. Runs unattended (no tty, no stdin). Must be root only when a
# package is actually missing.
set -euo pipefail

# One package a line, with why it is here. Keep this the only list: README.md's
# dependency table mirrors it.
PACKAGES=(
        meson           # build system (meson.build)
        ninja-build     # backend meson drives
        gcc             # C17 compiler; also provides the ASan/UBSan runtimes (libasan8, libubsan1)
        libc6-dev       # C library headers (only a Recommends of gcc)
        pkg-config      # lets meson find the libraries below
        libjansson-dev  # JSON: socket protocol, status --json, simulator lab files
        libyaml-dev     # YAML: daemon configuration (gpukeeper.yaml)
        libsqlite3-dev  # SQLite: the daemon's state database (WAL)
        libcmocka-dev   # unit tests (tests/unit)
        libsystemd-dev  # sd-event: the daemon's event loop (later sd-bus for systemd slices)
        libcurl4-openssl-dev # alert delivery: webhook, DingTalk, Slack, SMTP (libcurl multi)
        libssl-dev      # libcrypto: HMAC-SHA256 for DingTalk's signed webhooks
        libarchive-dev  # the dated tar.gz of conda environment specs (env backup)
        libmicrohttpd-dev # the daemon's HTTP listener for GET /metrics
        python3         # integration tests, scripts/count-results.py, sim/gen-lab.py
        python3-pytest  # integration tests (tests/integration)
        passwd          # useradd: integration tests create real users gktest-alice/-bob
        procps          # /bin/kill used by the unit file's ExecReload; ps for debugging
        util-linux      # setsid (demo.sh starts the daemon in its own session)
        groff-base      # renders the man pages (man, scripts/check-man.sh)
        man-db          # man -l --warnings: man page checks in docs/meson.build
        python3-aiosmtpd # integration tests: a real SMTP receiver on 127.0.0.1 for email alerts
        tcsh            # integration tests: the csh activate hook is sourced in a real tcsh
        fish            # integration tests: the fish activate hook is sourced in a real fish
        prometheus      # integration tests: promtool check metrics, and a real Prometheus scraping the daemon
        chromium        # integration tests: headless Chromium renders the dashboard and takes its screenshot
        libncurses-dev  # ncursesw: the full-screen view of gpukeeper top
        tmux            # integration tests: gpukeeper top runs in a detached tmux (send-keys, capture-pane)
        slurm-wlm       # integration tests + bench: a real one-node Slurm (prolog/epilog leases, srun backend, gres.conf)
        slurmctld       # Slurm's controller, started by the tests with their own slurm.conf
        slurmd          # Slurm's node daemon (runs gpukeeper slurm prolog/epilog)
        slurm-client    # srun, salloc, squeue, scontrol, scancel: the backend: slurm paths and the daemon's reconcile
        munge           # Slurm's authentication; the tests start their own munged with their own key
        binutils        # readelf: tests/unit/cli/test_cli_link.py checks gpukeeper's DT_NEEDED list (gcc brings it too)
        sqlite3         # integration tests: an admin's sqlite3 on the live state database (test_store_locks, test_crash)
        clang           # fuzzing: libFuzzer builds of tests/fuzz (scripts/run-fuzz.sh, tests/run-all.sh)
        libclang-rt-14-dev # fuzzing: libFuzzer and the ASan/UBSan runtimes for clang
        libpam0g-dev    # pam_gpukeeper.so (pam/): the PAM module's headers and libpam
        openssh-server  # integration tests: a real sshd on 127.0.0.1 logs users in through pam_gpukeeper.so
        openssh-client  # integration tests: ssh and ssh-keygen for those logins
        pamtester       # integration tests: the account phase's refusal message (require_lease)
        python3-dbusmock # integration tests: systemd's D-Bus API on a real dbus-daemon (SetUnitProperties of per-user limits)
        dbus            # dbus-daemon for those tests (python3-dbusmock brings it too)
        libcap2-bin     # integration tests: capsh drops CAP_BPF/CAP_SYS_ADMIN (strict mode must refuse)
)

missing=()
for pkg in "${PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
        if [[ "$status" != "installed" ]]; then
                missing+=("$pkg")
        fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
        echo "install-deps: all ${#PACKAGES[@]} packages already installed"
        exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
        echo "install-deps: missing packages: ${missing[*]}" >&2
        echo "install-deps: run as root to install them: sudo $0" >&2
        exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp /tmp/gpukeeper-install-deps.XXXXXX)
trap 'rm -f "$log"' EXIT
if ! apt-get update -qq >"$log" 2>&1 </dev/null ||
   ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$log" 2>&1 </dev/null; then
        tail -n 30 "$log" >&2
        echo "install-deps: apt-get failed (output above); check network access to the Debian mirror" >&2
        exit 1
fi
echo "install-deps: done"
