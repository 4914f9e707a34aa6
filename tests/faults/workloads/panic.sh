#!/bin/sh
# Crash the kernel: sysrq 'c' dereferences NULL, the console shows an Oops and a panic.
echo 1 > /proc/sys/kernel/sysrq
echo c > /proc/sysrq-trigger
sleep 30
