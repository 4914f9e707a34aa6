"""Real boots: Debian cloud kernels with the layered initramfs under QEMU TCG.

The selftest boot proves the whole guest half: the layers unpack on top of
each other, /init mounts, loads the modules layer's list, brings up eth0,
starts dropbear with the host-made key, runs fio (its library closure), and
powers off. The SSH boot proves the host can log in with its client key
while pinning the guest's host key (no "accept any key").
"""

from __future__ import annotations

import base64
import re
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest

from harness import devices
from harness.arches import preset
from harness.initramfs import base, keys, modules, runlayer
from harness.kernel.defaults import DEFAULT_KERNELS
from harness.kernel.resolve import resolve
from harness.machine.ssh import GuestShell
from harness.model import Kernel

pytestmark = [pytest.mark.boot, pytest.mark.xdist_group("initramfs-boot")]

# x86_64: QEMU 7.2's TCG mis-emulates the guest's cmpxchg16b now and then
# under multi-threaded TCG (double faults in __kmalloc_noprof, seen in 5 of 8
# boots with the default CPU, 1 of 6 with -cpu max); without cx16 SLUB does
# not use it (0 of 8).
MACHINES: dict[str, tuple[list[str], str]] = {
    "x86_64": (["qemu-system-x86_64", "-M", "q35", "-cpu", "qemu64,-cx16"], "ttyS0"),
    "arm64": (["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a57"], "ttyAMA0"),
}
BOOT_TIMEOUT = 240.0


@dataclass(frozen=True)
class Guest:
    kernel: Kernel
    initrd: Path
    host_key: keys.HostKey
    client_key: keys.ClientKey
    modules: int  # how many the modules layer loads


def _guest(kernel_name: str, tmp: Path) -> Guest:
    kernel = resolve(DEFAULT_KERNELS[kernel_name])
    assert kernel.modules_dir is not None
    layer = base.build_base(base.BaseSpec(arch=kernel.arch))
    mods = modules.build_modules_layer(kernel.modules_dir, devices.get("virtio-net").modules)
    hk = keys.generate_guest_host_key(tmp / "keys")
    ck = keys.generate_client_key(tmp / "keys")
    script = tmp / "hello.sh"
    script.write_text("#!/bin/sh\necho hello from $(hostname)\n")
    trace = Path(__file__).resolve().parent.parent / "guest_scripts" / "kharness-trace.sh"  # init arms it
    run = runlayer.build_run_layer(tmp / "run.cpio", [ck.public_line], hk.path, [script, trace])
    initrd = runlayer.assemble([layer.path, mods.path, run], tmp / "initrd")
    return Guest(kernel, initrd, hk, ck, len(mods.plan.order))


def _argv(g: Guest, append: str, netdev: str, mac: str = "") -> list[str]:
    machine, console = MACHINES[g.kernel.arch]
    # A page size the CPU above cannot translate (arm64 16K): the arch's model for it.
    by_page = dict(preset(g.kernel.arch).cpu_tcg_by_page_size)
    if g.kernel.page_size in by_page:
        machine = [*machine[:-1], by_page[g.kernel.page_size]]
    nic = "virtio-net-pci,netdev=n0,romfile=" + (f",mac={mac}" if mac else "")
    return [
        *machine, "-m", "1024", "-smp", "2", "-nographic", "-no-reboot",
        "-kernel", str(g.kernel.image), "-initrd", str(g.initrd),
        "-append", f"console={console} panic=-1 {append}".strip(),
        "-netdev", netdev, "-device", nic,
    ]


@pytest.mark.parametrize("kernel_name", sorted(DEFAULT_KERNELS))
def test_selftest_boot(kernel_name: str, tmp_path: Path) -> None:
    g = _guest(kernel_name, tmp_path)
    start = time.monotonic()
    proc = subprocess.run(_argv(g, "kharness.selftest", "user,id=n0"), capture_output=True,
                          text=True, errors="replace", timeout=BOOT_TIMEOUT, check=False)
    seconds = time.monotonic() - start
    console = proc.stdout
    (tmp_path / "console.log").write_text(console)
    assert "KHARNESS-INIT-ERROR" not in console, _tail(console)
    assert f"KHARNESS-READY release={g.kernel.release}" in console, _tail(console)
    expected = f"KHARNESS-SELFTEST ok release={g.kernel.release} modules={g.modules}"
    assert expected in console, _tail(console)
    assert proc.returncode == 0
    print(f"{kernel_name}: selftest after {seconds:.1f} s, initrd {g.initrd.stat().st_size} B")


@pytest.mark.parametrize("kernel_name", ["trixie-x86_64", "trixie-arm64"])
def test_ssh_login_with_pinned_host_key(kernel_name: str, tmp_path: Path) -> None:
    g = _guest(kernel_name, tmp_path)
    port = _free_port()
    # A second NIC probes first and takes eth0: init must find the SSH NIC by MAC.
    mac = "52:54:00:4b:48:01"
    argv = _argv(g, f"kharness.ssh_mac={mac.upper()}",
                 f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22", mac)
    argv[argv.index("-netdev"):argv.index("-netdev")] = [
        "-netdev", "user,id=n1,restrict=on", "-device", "virtio-net-pci,netdev=n1,romfile=",
    ]
    log = tmp_path / "console.log"
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        _wait_for(log, "KHARNESS-READY", proc)
        with _ssh(g, port) as client:
            assert _run(client, "uname -r") == g.kernel.release
            assert _run(client, "/kharness/scripts/hello.sh") == "hello from kharness"
            assert _run(client, "fio --version").startswith("fio-")
            assert _run(client, "head -n 1 /proc/slabinfo").startswith("slabinfo - version")
            assert _run(client, "ls /sys/kernel/debug/swiotlb >/dev/null && echo ok") == "ok"
            # one mount -a from the base's fstab, devpts on the side: all there, no warning
            mounted = {line.split()[1]: line.split()[2] for line in _run(client, "cat /proc/mounts").splitlines()}
            assert {k: mounted.get(k) for k in ("/proc", "/sys", "/dev", "/dev/pts", "/sys/kernel/debug",
                                                "/sys/kernel/tracing")} == {
                "/proc": "proc", "/sys": "sysfs", "/dev": "devtmpfs", "/dev/pts": "devpts",
                "/sys/kernel/debug": "debugfs", "/sys/kernel/tracing": "tracefs"}
            assert "KHARNESS-INIT-WARN" not in log.read_text(errors="replace")
            assert _run(client, "cat /sys/class/net/eth1/address") == mac
            # init armed the histograms at boot (writing first); a rerun in that mode meets
            # the kernel's EEXIST, looks, and is ok, adding nothing
            assert _run(client, "cat /run/kharness-trace.txt") == "kharness-trace: ok"
            trigger = "/sys/kernel/tracing/events/swiotlb/swiotlb_bounced/trigger"
            before = _run(client, f"cat {trigger}")
            assert _run(client, "KH_TRACE_BOOT=1 sh /kharness/scripts/kharness-trace.sh") == "kharness-trace: ok"
            assert _run(client, f"cat {trigger}") == before and before.count("hist:keys=") == 2
            # dropbear drops a command over 9000 bytes: GuestShell sends a long one on stdin
            with GuestShell(port, g.host_key.public_line, g.client_key.private_path) as shell:
                shell.connect(30)
                res = shell.run("x=" + "a" * 12000 + "\necho ${#x}", timeout=60)
                assert (res.exit_status, res.stdout) == (0, b"12000\n")
            client.exec_command("poweroff -f")
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _ssh(g: Guest, port: int) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    blob = base64.b64decode(g.host_key.public_line.split()[1])
    client.get_host_keys().add(f"[127.0.0.1]:{port}", "ssh-ed25519", paramiko.Ed25519Key(data=blob))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    pkey = paramiko.Ed25519Key.from_private_key_file(str(g.client_key.private_path))
    client.connect("127.0.0.1", port, username="root", pkey=pkey, look_for_keys=False,
                   allow_agent=False, timeout=30, banner_timeout=60, auth_timeout=60)
    return client


def _run(client: paramiko.SSHClient, command: str) -> str:
    _, stdout, stderr = client.exec_command(command, timeout=60)
    rc = stdout.channel.recv_exit_status()
    text = stdout.read().decode().strip()
    assert rc == 0, f"{command}: exit {rc}: {stderr.read().decode()}"
    return text


def _wait_for(log: Path, marker: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if marker in text:
            return
        if "KHARNESS-INIT-ERROR" in text or proc.poll() is not None:
            break
        time.sleep(0.2)
    pytest.fail(f"no {marker} on the console:\n{_tail(log.read_text(errors='replace'))}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _tail(console: str, lines: int = 40) -> str:
    return "\n".join(re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", console).splitlines()[-lines:])
