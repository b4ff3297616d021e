#!/bin/sh
# mutate.sh: removes each limit and refusal listed in tests/mutations.mjs, one at a time, in a
# copy of the tree, and reports which removal no test noticed (see tests/mutate.mjs).
# Run from anywhere after scripts/install-deps.sh --test; takes a few minutes per entry.
exec node "$(dirname "$0")/mutate.mjs" "$@"
