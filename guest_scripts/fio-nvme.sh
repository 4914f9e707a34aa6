#!/bin/sh
# fio-nvme: random direct I/O on the NVMe scratch disk; fio's JSON on stdout.
set -eu
dev=${KH_DEV_NVME:?no NVMe scratch disk}
exec fio --output-format=json --filename="$dev" --direct=1 --ioengine=libaio \
    --iodepth="${KH_IODEPTH:-4}" --bs="${KH_BLOCK_SIZE:-4096}" \
    --runtime="${KH_RUNTIME:-2}" --time_based --randrepeat=0 \
    --name=randread --rw=randread \
    --name=randwrite --stonewall --rw=randwrite \
    --name=randrw --stonewall --rw=randrw --rwmixread=50
