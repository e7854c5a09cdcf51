#!/usr/bin/env bash
# Re-creates the web app's vendored libraries (crates/shutter-api/web/vendor/) from pinned npm
# releases, so what is committed there can be checked and rebuilt:
#
#   scripts/vendor-web.sh          # fetch with `npm pack`, verify, and write vendor/
#   scripts/vendor-web.sh --check  # the same into a temp dir, then diff against vendor/
#
# Each package tarball is checked against its pinned sha512 integrity before anything is
# copied. Only the browser build each library ships is taken (no build step): tus-js-client's
# UMD bundle (defines `window.tus`) and blurhash's ES module. Their `//# sourceMappingURL`
# line is dropped (the maps are not vendored, and a browser would ask for them). Each
# library's licence goes next to it; blurhash's npm tarball carries no licence file, so the
# MIT text of its repository (woltapp/blurhash, "Copyright (c) 2018 Wolt Enterprises") is
# written beside it.
set -euo pipefail
cd "$(dirname "$0")/.."

TUS_VERSION=4.3.1
TUS_INTEGRITY="sha512-ZLeYmjrkaU1fUsKbIi8JML52uAocjEZtBx4DKjRrqzrZa0O4MYwT6db+oqePlspV+FxXJAyFBc/L5gwUi2OFsg=="
BLURHASH_VERSION=2.0.5
BLURHASH_INTEGRITY="sha512-cRygWd7kGBQO3VEhPiTgq4Wc43ctsM+o46urrmPOiuAe+07fzlSB9OJVdpgDL0jPqXUVQ9ht7aq7kxOeJHRK+w=="

command -v npm >/dev/null 2>&1 || { echo "FAIL: npm is required" >&2; exit 1; }

check=0
[ "${1:-}" = "--check" ] && check=1

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

fetch() { # name version integrity -> extracts into $tmp/<name>/package
  local name="$1" version="$2" integrity="$3" tgz got
  mkdir -p "$tmp/$name"
  tgz="$(cd "$tmp/$name" && npm pack --silent "$name@$version")"
  got="sha512-$(openssl dgst -sha512 -binary "$tmp/$name/$tgz" | base64 -w0)"
  if [ "$got" != "$integrity" ]; then
    echo "FAIL: $name@$version integrity $got, expected $integrity" >&2
    exit 1
  fi
  tar xzf "$tmp/$name/$tgz" -C "$tmp/$name"
}

strip_map() { sed '/^\/\/# sourceMappingURL=/d' "$1"; }

fetch tus-js-client "$TUS_VERSION" "$TUS_INTEGRITY"
fetch blurhash "$BLURHASH_VERSION" "$BLURHASH_INTEGRITY"

out="$tmp/vendor"
mkdir -p "$out/tus-js-client" "$out/blurhash"

strip_map "$tmp/tus-js-client/package/dist/tus.min.js" >"$out/tus-js-client/tus.min.js"
cp "$tmp/tus-js-client/package/LICENSE" "$out/tus-js-client/LICENSE"

strip_map "$tmp/blurhash/package/dist/esm/index.js" >"$out/blurhash/blurhash.mjs"
cat >"$out/blurhash/LICENSE" <<'EOF'
blurhash (npm package "blurhash", https://github.com/woltapp/blurhash, TypeScript/), licensed
MIT as its package.json declares; the text below is the repository's licence.

Copyright (c) 2018 Wolt Enterprises

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
EOF

cat >"$out/README.md" <<EOF
# Vendored front-end libraries

Written by \`scripts/vendor-web.sh\` from pinned npm releases (do not edit by hand; run the
script, or \`scripts/vendor-web.sh --check\` to compare):

| library | version | file | from the package | licence |
|---|---|---|---|---|
| tus-js-client | $TUS_VERSION | \`tus-js-client/tus.min.js\` | \`dist/tus.min.js\` (UMD, defines \`window.tus\`) | MIT, \`tus-js-client/LICENSE\` |
| blurhash | $BLURHASH_VERSION | \`blurhash/blurhash.mjs\` | \`dist/esm/index.js\` (ES module) | MIT, \`blurhash/LICENSE\` |

The \`//# sourceMappingURL\` comment is removed from each file; nothing else is changed.
EOF

dest=crates/shutter-api/web/vendor
if [ "$check" = 1 ]; then
  if diff -r "$out" "$dest"; then
    echo "vendor/ matches the pinned releases"
  else
    echo "FAIL: $dest differs from the pinned releases; run scripts/vendor-web.sh" >&2
    exit 1
  fi
else
  rm -rf "$dest"
  mkdir -p "$(dirname "$dest")"
  cp -r "$out" "$dest"
  echo "wrote $dest (tus-js-client $TUS_VERSION, blurhash $BLURHASH_VERSION)"
fi
