#!/bin/sh
echo "started"
sleep 100000
