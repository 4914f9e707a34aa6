"""Running a generated LAVA job on this machine with Debian's lava-dispatcher (`lava-run`).

A LAVA server renders a device's configuration from its device type's
template (lava-server's device-types/qemu.jinja2) with the job's context;
`lava-run` alone takes the rendered configuration. `qemu_device()` renders
what that template gives for the context kharness writes (arch, machine,
cpu, memory, extra_options, netdevice, model, guestfs_interface, no_kvm),
for the tests that run jobs here. Not part of kharness: a lab has the real
template.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

LAVA_PYTHON = "/usr/bin/python3"  # lava-common and lava-dispatcher live in Debian's Python
QEMU_BINARIES = {"arm64": "qemu-system-aarch64", "x86_64": "qemu-system-x86_64"}


def qemu_device(job: dict[str, Any]) -> dict[str, Any]:
    """The device configuration qemu.jinja2 renders for `job`'s context."""
    ctx = job.get("context", {})
    arch = ctx["arch"]
    options = []
    if arch in ("arm64", "aarch64"):
        options += [f"-cpu {ctx.get('cpu', 'cortex-a57')}", f"-machine {ctx.get('machine', 'virt')}"]
    elif not ctx.get("no_kvm"):
        options += ["-cpu host", "-enable-kvm"]
    if arch not in ("arm64", "aarch64") and ctx.get("machine"):
        options.insert(0, f"-machine {ctx['machine']}")
    options += [
        "-nographic",
        f"-net nic,{ctx.get('model', 'model=virtio')},macaddr=52:54:00:12:34:58 -net {ctx.get('netdevice', 'user')}",
        f"-m {ctx.get('memory', 512)}",
        f"-monitor {ctx.get('monitor', 'none')}",
    ]
    params: dict[str, Any] = {"command": QEMU_BINARIES[arch], "options": options}
    if ctx.get("extra_options"):
        params["extra"] = list(ctx["extra_options"])
    return {
        "available_architectures": ["arm64", "aarch64", "amd64", "x86_64"],
        "constants": {
            "posix": {"lava_test_sh_cmd": "/bin/sh", "lava_test_results_dir": "/lava-%s",
                      "lava_test_shell_file": "~/.bashrc"},
            "shutdown-message": "The system is going down for reboot NOW",
            "kernel-start-message": "Linux version [0-9]",
            "default-shell-prompt": "lava-test: # ",
            "spawn_maxread": "4092",
            "failure_retry": 1,
            "boot_retry": 1,
        },
        "parameters": {"pass": None},
        "actions": {
            "deploy": {
                "connections": {"serial": None, "lxc": None},
                "methods": {"image": {"parameters": {"guest": {
                    "size": int(ctx.get("guestfs_size", 512)),
                    "interface": ctx.get("guestfs_interface", "ide"),
                    "driveid": ctx.get("guestfs_driveid", "lavatest")}}}},
            },
            "boot": {"connections": {"serial": None}, "methods": {"qemu": {"parameters": params}}},
        },
        "timeouts": {
            "actions": {"apply-overlay-image": {"minutes": 2}, "lava-test-shell": {"minutes": 3},
                        "power-off": {"seconds": 10}, "auto-login-action": {"minutes": 2},
                        "boot-qemu-image": {"minutes": 5}, "boot-image-retry": {"minutes": 5},
                        "http-download": {"minutes": 5}, "download-retry": {"minutes": 5}},
            "connections": {"auto-login-action": {"minutes": 2}, "lava-test-shell": {"seconds": 10}},
        },
    }


def lava_run_missing() -> str:
    """Why lava-run cannot run here ('' if it can)."""
    if shutil.which("lava-run") is None:
        return "no lava-run (Debian package lava-dispatcher; ./setup.sh --test installs it)"
    if os.geteuid() != 0:
        return "lava-run runs as root only"
    return ""


def guestfs_env(host_kernel: Path | None = None, host_modules: Path | None = None) -> dict[str, str]:
    """What libguestfs needs here to build the qemu device type's overlay disk.

    LAVA puts the test overlay on a qcow2 disk it makes with libguestfs,
    whose appliance boots the host's kernel from /boot. A container has no
    /boot kernel ("supermin: failed to find a suitable kernel"): then give it
    another x86_64 kernel and its modules (SUPERMIN_KERNEL/SUPERMIN_MODULES;
    the tests pass Debian's, as kharness fetched it). The appliance runs
    under TCG: /dev/kvm opens here but hangs a guest.
    """
    env = dict(os.environ, LIBGUESTFS_BACKEND_SETTINGS="force_tcg")
    if not list(Path("/boot").glob("vmlinuz-*")) and host_kernel is not None and host_modules is not None:
        env |= {"SUPERMIN_KERNEL": str(host_kernel), "SUPERMIN_MODULES": str(host_modules)}
    return env


def lava_run(job: dict[str, Any], work: Path, timeout: float = 1800,
             env: dict[str, str] | None = None) -> tuple[int, Path]:
    """Run `job` with lava-run in `work`; its exit status and the YAML log it wrote (one record a line)."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "job.yaml").write_text(yaml.safe_dump(job, sort_keys=False))
    (work / "device.yaml").write_text(yaml.safe_dump(qemu_device(job), sort_keys=False))
    log = work / "lava-run.log"
    with log.open("wb") as out:
        proc = subprocess.run(
            ["lava-run", "--job-id", "1", "--output-dir", str(work / "out"), "--device", str(work / "device.yaml"),
             str(work / "job.yaml")],
            stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False, cwd=work, env=env)
    return proc.returncode, log


def validate(job: dict[str, Any]) -> str:
    """LAVA's own job schema (lava_common.schemas.validate, strict) on `job`: '' if valid, else why."""
    code = ("import sys, yaml\nfrom lava_common.schemas import validate\n"
            "try:\n    validate(yaml.safe_load(sys.stdin.read()))\n"
            "except Exception as exc:\n    print(f'{type(exc).__name__}: {exc}')\n    sys.exit(1)\n")
    proc = subprocess.run([LAVA_PYTHON, "-c", code], input=yaml.safe_dump(job), capture_output=True, text=True,
                          timeout=60, check=False)
    return "" if proc.returncode == 0 else (proc.stdout + proc.stderr).strip() or f"exit {proc.returncode}"
