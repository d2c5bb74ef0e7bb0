// Package powershell quotes strings for the PowerShell lines the project
// sends to Windows, so a value can never end its literal early.
package powershell

import "strings"

// isSingleQuote: PowerShell's tokenizer takes U+2018..U+201B as single
// quotes too (PowerShell/PowerShell,
// src/System.Management.Automation/engine/parser/CharTraits.cs: IsSingleQuote).
func isSingleQuote(r rune) bool {
	return r == '\'' || r == '\u2018' || r == '\u2019' || r == '\u201a' || r == '\u201b'
}

// Quote returns s as one single-quoted literal: every single-quote
// character, ASCII or typographic, is doubled, which the tokenizer reads
// back as that one character.
func Quote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range s {
		if isSingleQuote(r) {
			b.WriteRune(r)
		}
		b.WriteRune(r)
	}
	b.WriteByte('\'')
	return b.String()
}

// Unquote reads back the body of a single-quoted literal (without its outer
// quotes): a pair of single-quote characters stands for the first of them.
func Unquote(body string) string {
	rs := []rune(body)
	var b strings.Builder
	for i := 0; i < len(rs); i++ {
		b.WriteRune(rs[i])
		if isSingleQuote(rs[i]) && i+1 < len(rs) && isSingleQuote(rs[i+1]) {
			i++
		}
	}
	return b.String()
}
