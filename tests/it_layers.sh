#!/bin/bash
# The layering of docs/architecture.md on the built objects: calls between
# folders go down only, and no files of one folder call each other in a
# cycle.
TOP=$(cd "$(dirname "$0")/.." && pwd)
exec python3 "$TOP/tests/layers.py" "$TOP/build"
