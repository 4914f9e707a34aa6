"""KernelCI: a result directory as KCIDB I/O JSON, to submit with KernelCI's own tools (kcidb-submit)."""
