"""`kharness ab`: what does this patch do? Base and patched kernels, the same cells, one verdict.

    kharness ab CONFIG --tree ../linux --ref v6.12 --patch 0001-fix.patch [--kconfig defconfig]
    kharness ab CONFIG --base NAME --patched NAME     # two kernels of the config
    kharness ab CONFIG                                # the config's kernels `base` and `patched`
    kharness ab --resume DIR

The pieces: `plan` (the question: two kernels, the cells, the two side
configs written into the directory), `interleave` (both sides' boots in one
schedule, A B A B ..., into two ordinary result directories), `report`
(ab.json, report.md, report.txt from `harness.compare`'s comparison), `cli`.
"""
