#!/usr/bin/env bash
# `npm run lint`'s shell half: shellcheck (warnings and errors) on every shell script of the
# repository: the ones m5dev runs in the guest and in tool containers (sh/), the toolchain image's
# (docker/), and the development ones (scripts/, bench/).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v shellcheck >/dev/null || { echo "lint: shellcheck is not installed (apt-get install shellcheck, or make setup)" >&2; exit 1; }
files=(sh/*/*.sh scripts/*.sh scripts/engines/*.sh bench/*.sh docker/m5ops/build.sh docker/m5dev-tools/m5dev-flash docker/m5dev-tools/m5dev-toolchain-packages)
shellcheck -S warning "${files[@]}"
# Its package list is split into words on purpose (SC2046); a directive in the file would change the
# toolchain image's context, and with it every cached image and kernel build.
shellcheck -S warning -e SC2046 docker/m5dev-tools/m5dev-install-locked
# The one Python script m5dev sends (the VM container's relay): it must at least parse.
for f in sh/*/*.py; do python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' "$f"; done
