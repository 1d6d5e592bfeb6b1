#!/usr/bin/env bash
# The API reference: Doxygen over the public headers (include/fmd) with the README and docs/*.md as
# pages (docs/Doxyfile), into build/docs/html. Any Doxygen warning fails it: an undocumented public
# entity, an unknown command, a bad \param name, a broken link.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh doxygen
rm -rf build/docs/html
mkdir -p build/docs
doxygen docs/Doxyfile
echo "docs: API reference in $PWD/build/docs/html/index.html"
