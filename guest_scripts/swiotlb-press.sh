#!/bin/sh
# swiotlb-press: many small direct I/Os in flight on virtio-blk and NVMe at once,
# so many small bounces are in flight at once; fio's JSON on stdout.
set -eu
vblk=${KH_DEV_VBLK:?no virtio-blk scratch disk}
nvme=${KH_DEV_NVME:?no NVMe scratch disk}
exec fio --output-format=json --direct=1 --ioengine=libaio --rw=randread \
    --iodepth="${KH_DEPTH:-128}" --numjobs="${KH_JOBS:-4}" --bs="${KH_BLOCK_SIZE:-4096}" \
    --runtime="${KH_RUNTIME:-3}" --time_based --randrepeat=0 --group_reporting=0 \
    --name=vblk --filename="$vblk" \
    --name=nvme --filename="$nvme"
