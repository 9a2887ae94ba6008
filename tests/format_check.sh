#!/usr/bin/env bash
# Every C++ source and header is formatted by clang-format with the repo's
# .clang-format (STYLE.md: Google style on every file). Fails naming each
# file that is not, and how to fix it. Usage: format_check.sh SOURCE_DIR
set -euo pipefail
cd "${1:?usage: format_check.sh SOURCE_DIR}"
if ! command -v clang-format >/dev/null; then
  echo "format_check: clang-format is not installed (.ci/setup installs it)"
  exit 1
fi
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  listed=$(git ls-files --cached --others --exclude-standard '*.cc' '*.h')
else  # an unpacked archive: every source outside build directories
  listed=$(find . -path './build*' -prune -o \( -name '*.cc' -o -name '*.h' \) \
    -print)
fi
files=()
for f in $listed; do [ -f "$f" ] && files+=("$f"); done
if [ ${#files[@]} -eq 0 ]; then
  echo "format_check: no C++ sources found under $PWD"
  exit 1
fi
bad=$(clang-format --dry-run "${files[@]}" 2>&1 |
  sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: warning: code should be clang-formatted.*/\1/p' |
  sort -u)
if [ -n "$bad" ]; then
  echo "format_check: not formatted by clang-format ($(clang-format --version)):"
  echo "$bad" | sed 's/^/  /'
  echo "fix: clang-format -i $(echo $bad)"
  exit 1
fi
echo "format_check: ${#files[@]} files formatted"
