#!/bin/sh
sleep "${KH_SECONDS:-1}"
