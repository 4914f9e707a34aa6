"""Which guest drivers a kernel has: built in, as a module, or not at all.

A workload's QEMU devices are only useful if the guest kernel drives them,
and a module must go into the initramfs while a built-in driver need not.
The kernel's .config answers this exactly; without one, the modules tree
(modules.builtin plus the .ko files shipped) answers it nearly as well.

Note: Debian's cloud kernels are built without USB and without e1000e, so
xhci_pci, usb_storage and e1000e come out "missing" for every default kernel.
The drivers and their symbols are the device kinds' (harness/devices/).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from harness import devices
from harness.devices import Driver
from harness.errors import UsageError
from harness.model import Kernel

State = Literal["builtin", "module", "missing", "unknown"]
_RANK: dict[State, int] = {"missing": 0, "unknown": 1, "module": 2, "builtin": 3}



_LINE_SET = re.compile(r"^CONFIG_(\w+)=(.*)$")
_LINE_UNSET = re.compile(r"^# CONFIG_(\w+) is not set$")
_MODULE_SUFFIX = re.compile(r"\.ko(\.(xz|zst|gz))?$")


def parse_config(text: str) -> dict[str, str]:
    """Symbol (without CONFIG_) -> value: 'y', 'm', 'n' (is not set), or the literal."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if m := _LINE_SET.match(line):
            values[m.group(1)] = m.group(2)
        elif m := _LINE_UNSET.match(line):
            values[m.group(1)] = "n"
    return values


def read_config(path: Path) -> dict[str, str]:
    try:
        return parse_config(path.read_text(errors="replace"))
    except OSError as exc:
        problem = f"cannot read kernel config {path} ({exc.strerror})"
        raise UsageError(problem, "check the path") from exc


def symbol_state(config: dict[str, str], symbol: str) -> State:
    value = config.get(symbol, "n")
    return "builtin" if value == "y" else "module" if value == "m" else "missing"


def module_name(path: str) -> str:
    """'kernel/drivers/usb/host/xhci-pci.ko.xz' -> 'xhci_pci' (how modprobe names it)."""
    return _MODULE_SUFFIX.sub("", Path(path).name).replace("-", "_")


def modules_tree_states(modules_dir: Path) -> dict[str, State]:
    """Module name -> builtin|module for everything a lib/modules/<release> tree offers."""
    states: dict[str, State] = {}
    for path in modules_dir.rglob("*.ko*"):
        if _MODULE_SUFFIX.search(path.name):
            states[module_name(path.name)] = "module"
    builtin = modules_dir / "modules.builtin"
    if builtin.is_file():
        for line in builtin.read_text(errors="replace").splitlines():
            if line.strip():
                states[module_name(line.strip())] = "builtin"
    return states


def driver_status(
    kernel: Kernel | None = None,
    drivers: Iterable[str] | None = None,  # None: every device kind's (harness.devices.drivers())
    *,
    config: Path | None = None,
    modules_dir: Path | None = None,
) -> dict[str, State]:
    """How each driver is available; the weakest of a driver's parts decides.

    Uses the kernel's .config when there is one (exact), else its modules
    tree, else says "unknown": never guess "missing" without evidence.
    """
    if kernel is not None:
        config = config or kernel.config
        modules_dir = modules_dir or kernel.modules_dir
    known = devices.drivers()
    wanted = [_driver(name, known) for name in (known if drivers is None else drivers)]
    if config is not None:
        values = read_config(config)
        return {d.name: _weakest(symbol_state(values, s) for s in d.symbols) for d in wanted}
    if modules_dir is not None and modules_dir.is_dir():
        tree = modules_tree_states(modules_dir)
        return {d.name: _weakest(tree.get(m, "missing") for m in d.modules) for d in wanted}
    return {d.name: "unknown" for d in wanted}


def _driver(name: str, known: dict[str, Driver]) -> Driver:
    try:
        return known[name]
    except KeyError:
        raise UsageError(f"unknown guest driver {name!r}", f"use one of {', '.join(known)}") from None


def _weakest(states: Iterable[State]) -> State:
    return min(states, key=lambda s: _RANK[s])
