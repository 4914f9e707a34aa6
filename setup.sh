#!/usr/bin/env bash
# Sets up a Debian/Ubuntu host for kharness: the Debian packages it drives
# (QEMU, mmdebstrap, dtc, ...) and a Python virtual environment in .venv.
# Safe to run again: it installs only what is missing.
#
#   ./setup.sh          host packages + .venv with kharness
#   ./setup.sh --test   the same, plus the test tools (tox, pytest, mypy, ruff)
set -euo pipefail
cd "$(dirname "$0")"

packages=(
    qemu-system-arm          # qemu-system-aarch64
    qemu-system-x86          # qemu-system-x86_64
    qemu-utils               # qemu-img for scratch disks
    ipxe-qemu                # option ROMs QEMU loads for virtio-net-pci on x86
    mmdebstrap               # guest userland from Debian packages
    debian-archive-keyring   # signatures of Debian kernels and userland
    apt gpgv                 # private, signature-checked kernel resolution
    kmod                     # depmod: modules.dep for Debian kernel packages
    zstd lz4 lzop            # unpacking kernels: trixie's x86 payload (zstd), bookworm's (lz4), .ko.zst
    util-linux               # setpriv: QEMU dies with kharness
    device-tree-compiler     # dtc: non-coherent arm64 device trees
    git                      # kharness check under git bisect run
    make gcc libc6-dev bc flex bison libelf-dev libssl-dev   # kharness check --tree: kernel builds
    gcc-aarch64-linux-gnu    # ... of arm64 trees on an x86_64 host
    python3-venv python3-pip
    ca-certificates
)
# Only for the test suite (./setup.sh --test).
test_packages=(
    linux-source-6.1         # the kernel tree the build test builds (tests/test_check_build.py)
    chromium                 # headless, for the test that opens report.html in a browser
    busybox                  # guest scripts' tests run under busybox sh too
    dropbear-bin             # dropbearkey: tests check the guest host key it reads (tests/test_initramfs_keys.py)
    groff-base               # the man page test renders `kharness man`
    lava-common              # LAVA's job schema: every generated job is validated (tests/test_lava_job.py)
    lava-dispatcher          # lava-run: a generated qemu job really runs (tests/test_lava_run.py)
)
[ "${1:-}" = "--test" ] && packages+=("${test_packages[@]}")

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    if [ "$(id -u)" -eq 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "kharness setup: missing host packages; run:" >&2
        echo "  sudo apt-get install --no-install-recommends ${missing[*]}" >&2
        exit 3
    fi
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "kharness setup: Python >= 3.11 is needed ($python is older); set PYTHON=" >&2
    exit 3
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = "--test" ]; then
    .venv/bin/python -m pip install -q -e '.[test]' tox
else
    .venv/bin/python -m pip install -q -e .
fi
echo "kharness setup: ready (.venv/bin/kharness)"
