"""Real boards through LAVA: job definitions of cells out, finished jobs' logs back in as result directories.

    kharness lava ramdisk CONFIG -o DIR        the ramdisk (and kernel, disks, tree) each cell's job deploys
    kharness lava job CONFIG --device-type T   one LAVA job definition per cell repetition (job.py)
    kharness lava ingest LOG... -o RUN         the logs as an ordinary result directory (ingest.py)

A layer beside compare and bisect: it reads configs and cells, and reuses
the run layer's boot artefacts, snapshot I/O and result writers, so a board
run's directory is a QEMU run's.
"""
