"""x86_64 guests: the q35 machine (PCIe, like arm64's virt)."""

from harness.machine.arches import ArchPreset

PRESET = ArchPreset(
    name="x86_64",
    qemu="qemu-system-x86_64",
    host_machine="x86_64",
    machine="q35",
    # Without cmpxchg16b: QEMU 7.2's TCG corrupts EFLAGS when a cmpxchg16b
    # fails (seen here: double faults in __kmalloc_noprof under load); the
    # kernel then uses its own cmpxchg16b emulation instead.
    cpu_tcg="max,-cx16",
    cpu_kvm="host",
    console="ttyS0",
    # No hardware clock worth calibrating against under TCG: skip the wait.
    # no_timer_check: on a loaded host the IO-APIC timer check can miss its
    # ticks under TCG and panic ("IO-APIC + timer doesn't work"; seen here).
    cmdline=("console=ttyS0", "tsc=unstable", "no_timer_check"),
    debian_package="qemu-system-x86",
)
