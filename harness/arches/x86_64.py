"""x86_64 guests: the q35 machine (PCIe, like arm64's virt)."""

from harness.arches import ArchBuild, ArchPreset

PRESET = ArchPreset(
    name="x86_64",
    # Debian names the x86_64 architecture amd64.
    debian="amd64",
    aliases=("amd64", "x86-64", "x64"),
    elf_machine="EM_X86_64",
    triplet="x86_64-linux-gnu",
    # Documentation/arch/x86/boot.rst: the setup header with "HdrS".
    kernel_format="bzImage",
    pe_machine=0x8664,
    page_sizes=(4096,),
    qemu="qemu-system-x86_64",
    qemu_package="qemu-system-x86",
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
    build=ArchBuild(
        make_arch="x86_64", src_arch="x86", target="bzImage", image="arch/x86/boot/bzImage",
        cross_compile="x86_64-linux-gnu-", cross_package="gcc-x86-64-linux-gnu",
        options=("64BIT", "SERIAL_8250", "SERIAL_8250_CONSOLE"),
    ),
)
