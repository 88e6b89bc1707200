#!/usr/bin/env bash
# docs/dependency-graph.md: the imports between src/'s layers, drawn by dependency-cruiser (with
# the rules of .dependency-cruiser.cjs) as a Mermaid flowchart, one box a folder.
#   dependency-graph.sh          write it (make docs)
#   dependency-graph.sh --check  exit 1 when the committed one is not what the code draws (npm run lint)
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/dependency-graph.md
draw() {
  printf '# Dependencies between the layers of src/\n\nDrawn by `make docs` (scripts/dependency-graph.sh: dependency-cruiser, the rules of .dependency-cruiser.cjs); each folder is one box. `npm run lint` fails when it is not what the code draws.\n\n```mermaid\n'
  npx depcruise src --config .dependency-cruiser.cjs --output-type mermaid --collapse '^src/[^/]+/' --include-only '^src'
  printf '```\n'
}
if [[ "${1:-}" == --check ]]; then
  if ! diff -q <(draw) "$out" >/dev/null; then
    echo "dependency-graph: $out is not what the code draws: run make docs" >&2
    exit 1
  fi
else
  draw > "$out"
fi
