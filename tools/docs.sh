#!/usr/bin/env bash
# Renders the provider docs (docs/index.md, docs/resources, docs/data-sources,
# docs/ephemeral-resources, docs/guides) with tfplugindocs from the schema
# descriptions, templates/ and examples/.
#
#   tools/docs.sh            regenerate docs/ in place
#   tools/docs.sh --check    regenerate into a temporary copy and fail, with
#                            the diff, when docs/ is not what generate makes
#
# It works offline and without a Terraform CLI: the schema JSON comes from
# the provider itself over the plugin protocol (provider/internal/schemajson,
# the format of `terraform providers schema -json`, including ephemeral
# resources, which the terraform and tofu CLIs built here predate), and
# tfplugindocs runs from the pinned tools module (tools/go.mod) with
# --providers-schema, so it neither builds the provider nor downloads
# Terraform. docs/ files tfplugindocs does not manage (docs/architecture.md)
# are left alone. Guides are written in templates/guides/.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GO=${GO:-go}
check=false
case "${1:-}" in
--check) check=true ;;
"") ;;
*) echo "usage: tools/docs.sh [--check]" >&2; exit 2 ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The generator, built once per tools/go.sum and Go version.
key=$( (cat "$repo/tools/go.sum"; $GO env GOVERSION) | sha256sum | cut -c1-16)
cache="${MIXEDK8S_CACHE:-$HOME/.cache/mixedk8s}/tfplugindocs-$key"
if [[ ! -x "$cache/tfplugindocs" ]]; then
	mkdir -p "$cache"
	(cd "$repo/tools" && GOWORK=off GOFLAGS=-mod=readonly "$GO" build -o "$cache/tfplugindocs.tmp" github.com/hashicorp/terraform-plugin-docs/cmd/tfplugindocs)
	mv -f "$cache/tfplugindocs.tmp" "$cache/tfplugindocs"
fi

(cd "$repo" && "$GO" run ./provider/internal/schemajson -address mixedk8s) >"$tmp/schema.json"

target=$repo
if $check; then
	# A copy of what generate reads and writes, so the check changes nothing.
	target=$tmp/tree
	mkdir -p "$target"
	cp -R "$repo/docs" "$repo/templates" "$repo/examples" "$target/"
fi

(cd "$target" && "$cache/tfplugindocs" generate \
	--provider-name mixedk8s \
	--rendered-provider-name mixedk8s \
	--providers-schema "$tmp/schema.json" \
	--website-temp-dir "$tmp/website") >"$tmp/generate.log" 2>&1 || {
	cat "$tmp/generate.log" >&2
	echo "docs: tfplugindocs generate failed (log above)" >&2
	exit 1
}

if $check; then
	if ! diff -ru "$repo/docs" "$target/docs"; then
		echo "docs: docs/ is out of date; fix: run tools/docs.sh (make generate) and commit docs/" >&2
		exit 1
	fi
	echo "docs: docs/ is current"
else
	echo "docs: rendered into $repo/docs"
fi
