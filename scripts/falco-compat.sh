#!/usr/bin/env bash
# How much of a Falco ruleset Vigil runs.
#
#   bash scripts/falco-compat.sh DIR
#
# DIR holds Falco rule files (falco_rules.yaml, falco-incubating_rules.yaml, ...), downloaded by
# you: no third-party rule file is part of this repository. Every *.yaml/*.yml in DIR (not in
# subdirectories) is loaded in one `vigil rules check --json` run, in Falco's order:
# falco_rules.yaml first, *.local.yaml last, the others by name in between (later files append
# to and override earlier ones, so the order matters). Prints the number of rules, how many are
# enabled and disabled, and the disabled rules grouped by reason, most frequent first.
#
# The binary is $VIGIL if set, else target/release/vigil or target/debug/vigil of this
# repository, else `vigil` on PATH. Run as root: `rules check` then loads the sensors to learn
# which event types this node observes (without root it assumes every type is observable).
# Exit status: 0 when the files load, 1 when they do not (vigil's errors are shown), 2 on usage.

set -euo pipefail

usage() {
	echo "usage: $0 DIR   (DIR: a directory of Falco rule files)" >&2
	exit 2
}

[ $# -eq 1 ] || usage
dir=$1
[ -d "$dir" ] || { echo "$0: $dir is not a directory" >&2; exit 2; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
vigil=${VIGIL:-}
if [ -z "$vigil" ]; then
	for c in "$repo/target/release/vigil" "$repo/target/debug/vigil"; do
		if [ -x "$c" ]; then vigil=$c; break; fi
	done
fi
if [ -z "$vigil" ]; then
	vigil=$(command -v vigil || true)
fi
[ -n "$vigil" ] || { echo "$0: no vigil binary (build it: cargo build -p vigil, or set VIGIL)" >&2; exit 2; }

# Falco's load order.
files=()
[ -f "$dir/falco_rules.yaml" ] && files+=("$dir/falco_rules.yaml")
while IFS= read -r f; do
	files+=("$f")
done < <(find "$dir" -maxdepth 1 -type f \( -name '*.yaml' -o -name '*.yml' \) \
	! -name 'falco_rules.yaml' ! -name '*.local.yaml' ! -name '*.local.yml' | LC_ALL=C sort)
while IFS= read -r f; do
	files+=("$f")
done < <(find "$dir" -maxdepth 1 -type f \( -name '*.local.yaml' -o -name '*.local.yml' \) | LC_ALL=C sort)
[ ${#files[@]} -gt 0 ] || { echo "$0: no *.yaml or *.yml file in $dir" >&2; exit 2; }

out=$(mktemp)
err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT

echo "vigil:    $vigil"
echo "files:    ${#files[@]} (in load order)"
for f in "${files[@]}"; do echo "          $f"; done
start=$(date +%s%N)
if ! "$vigil" rules check --json "${files[@]}" >"$out" 2>"$err"; then
	echo "the files do not load:" >&2
	cat "$err" >&2
	exit 1
fi
end=$(date +%s%N)
# Notes such as "sensors could not be loaded" go to stderr.
if [ -s "$err" ]; then sed 's/^/note:     /' "$err"; fi
echo "time:     $(((end - start) / 1000000)) ms for the whole command (sensor probe included)"

if command -v python3 >/dev/null 2>&1; then
	python3 - "$out" <<'EOF'
import collections, json, sys

with open(sys.argv[1]) as f:
    d = json.load(f)
rules = d["rules"]
enabled = sum(1 for r in rules if r["enabled"])
reasons = collections.Counter(r["disabled_reason"] or "?" for r in rules if not r["enabled"])
print(f"rules:    {len(rules)}")
print(f"enabled:  {enabled}")
print(f"disabled: {len(rules) - enabled}")
print(f"warnings: {len(d['warnings'])}")
if reasons:
    print("disabled, by reason:")
    for reason, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {n:4d}  {reason}")
EOF
elif command -v jq >/dev/null 2>&1; then
	jq -r '
	  .rules as $r
	  | "rules:    \($r | length)",
	    "enabled:  \([$r[] | select(.enabled)] | length)",
	    "disabled: \([$r[] | select(.enabled | not)] | length)",
	    "warnings: \(.warnings | length)",
	    "disabled, by reason:",
	    ([$r[] | select(.enabled | not) | (.disabled_reason // "?")]
	     | group_by(.) | map({n: length, reason: .[0]}) | sort_by(-.n, .reason)[]
	     | "  \(.n | tostring | (" " * (4 - length)) + .)  \(.reason)")
	' "$out"
else
	# Plain text: the pretty-printed JSON has one `"key": value` per line.
	total=$(grep -c '^      "name": ' "$out" || true)
	on=$(grep -c '^      "enabled": true' "$out" || true)
	echo "rules:    $total"
	echo "enabled:  $on"
	echo "disabled: $((total - on))"
	echo "warnings: $(sed -n '/^  "warnings": \[/,/^  \]/p' "$out" | grep -c '^    "' || true)"
	echo "disabled, by reason:"
	grep '^      "disabled_reason": "' "$out" |
		sed -e 's/^      "disabled_reason": "//' -e 's/",\{0,1\}$//' -e 's/\\"/"/g' |
		sort | uniq -c | sort -k1,1nr -k2 |
		while read -r n reason; do printf '  %4d  %s\n' "$n" "$reason"; done
fi
