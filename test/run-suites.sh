#!/bin/sh
# `npm test` after the type check: the ava suite in two phases, with the arguments given to both
# (`npm test -- --tap` for TAP). First every test file but the timed chaos scenarios, two files at a
# time (package.json's "ava" settings); then those scenarios alone (ava.timed.config.js). Both phases
# always run; the exit status is non-zero when either failed.
set -u
ava "$@"
first=$?
echo "== timed chaos scenarios, alone (ava.timed.config.js)" >&2
ava --config ava.timed.config.js "$@"
second=$?
[ "$first" -eq 0 ] && [ "$second" -eq 0 ]
