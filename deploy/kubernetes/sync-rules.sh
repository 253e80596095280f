#!/bin/sh
# Copies rules/vigil-default.yaml into configmap.yaml (its last key, vigil-default.yaml).
set -eu
here=$(dirname "$0")
cm="$here/configmap.yaml"
tmp="$cm.tmp"
sed '/^  vigil-default.yaml: |$/q' "$cm" > "$tmp"
sed 's/^\(.\)/    \1/' "$here/../../rules/vigil-default.yaml" >> "$tmp"
mv "$tmp" "$cm"
