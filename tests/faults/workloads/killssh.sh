#!/bin/sh
sleep 1
killall -9 dropbear
sleep 30
