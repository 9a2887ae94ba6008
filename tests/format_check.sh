#!/usr/bin/env bash
# Every C++ source and header is formatted by clang-format with the repo's
# .clang-format (STYLE.md: Google style on every file). Fails naming each
# file that is not, and how to fix it. Usage: format_check.sh SOURCE_DIR
#
# The files: git's tracked ones; outside a git checkout, every .cc/.h but
# those of CMake build trees (a directory holding CMakeCache.txt: generated
# protobuf code). clang-format 14 (Debian 12's, which .ci/setup installs)
# is the reference: another major version formats some lines otherwise, so
# the check is skipped there (exit 77, CTest's "skipped") with a message.
set -euo pipefail
cd "${1:?usage: format_check.sh SOURCE_DIR}"
format=clang-format-14
command -v "$format" >/dev/null || format=clang-format
if ! command -v "$format" >/dev/null; then
  echo "format_check: clang-format is not installed (.ci/setup installs it)"
  exit 1
fi
version=$("$format" --version)
if [[ ! "$version" =~ version\ 14\. ]]; then
  echo "format_check: skipped: $version is not clang-format 14, the" \
    "version this check is defined by (.ci/setup installs it)"
  exit 77
fi
files=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  while IFS= read -r -d '' f; do
    [ -f "$f" ] && files+=("$f")
  done < <(git ls-files -z -- '*.cc' '*.h')
else
  prune=()
  while IFS= read -r -d '' cache; do
    dir=$(dirname "$cache")
    [ "$dir" = . ] && continue  # an in-source build: its sources are ours
    prune+=(-path "$dir" -prune -o)
  done < <(find . -name CMakeCache.txt -print0)
  while IFS= read -r -d '' f; do
    files+=("$f")
  done < <(find . "${prune[@]}" -type f \( -name '*.cc' -o -name '*.h' \) \
    -print0)
fi
if [ ${#files[@]} -eq 0 ]; then
  echo "format_check: no C++ sources found under $PWD"
  exit 1
fi
# Without --Werror clang-format exits 0 on unformatted code, and fails only
# on errors of its own (an unreadable file, a bad .clang-format): shown.
if ! out=$("$format" --dry-run "${files[@]}" 2>&1); then
  echo "format_check: $format failed:"
  echo "$out"
  exit 1
fi
bad=()
while IFS= read -r f; do
  [ -n "$f" ] && bad+=("$f")
done < <(echo "$out" |
  sed -n 's/^\(.*\):[0-9]*:[0-9]*: warning: code should be clang-formatted.*/\1/p' |
  sort -u)
if [ ${#bad[@]} -gt 0 ]; then
  echo "format_check: not formatted by $format ($version):"
  printf '  %s\n' "${bad[@]}"
  printf 'fix: %s -i' "$format"
  printf ' %q' "${bad[@]}"
  echo
  exit 1
fi
echo "format_check: ${#files[@]} files formatted ($version)"
