#!/bin/sh
# idle: nothing but time passing, so collectors see the resting state.
set -eu
sleep "${KH_SECONDS:-2}"
