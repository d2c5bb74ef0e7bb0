package agent

import "strings"

// localName reports whether name, slash-separated as archives and URLs
// write it, stays below the folder it is joined to on the node's OS.
// Windows also splits at backslashes, and a colon there names a drive or an
// alternate data stream, so `a\..\..\x` or `C:x` would leave the folder.
func localName(name, goos string) bool {
	if name == "" || strings.HasPrefix(name, "/") {
		return false
	}
	seps := "/"
	if goos == "windows" {
		seps = `/\`
		if strings.ContainsRune(name, ':') {
			return false
		}
	}
	for _, el := range strings.FieldsFunc(name, func(r rune) bool { return strings.ContainsRune(seps, r) }) {
		if el == ".." {
			return false
		}
	}
	return !strings.ContainsAny(name[:1], seps)
}
