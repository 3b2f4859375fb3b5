package storage

import "strings"

// splitStatements splits a migration file into statements at the semicolons
// that are outside quotes ('...', "...", `...`) and comments. Ordinary
// comments are replaced by a blank (so tokens never merge); executable
// comments (/*! ... */) and optimizer hints (/*+ ... */) are kept. Empty
// statements are dropped. There is no DELIMITER support: migrations hold no
// stored programs.
func splitStatements(src string) []string {
	var (
		stmts []string
		cur   strings.Builder
	)
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			stmts = append(stmts, s)
		}
		cur.Reset()
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			end := quotedEnd(src, i)
			cur.WriteString(src[i:end])
			i = end - 1
		case c == '#' || (c == '-' && strings.HasPrefix(src[i:], "--") && (i+2 == len(src) || isSpace(src[i+2]))):
			nl := strings.IndexByte(src[i:], '\n')
			if nl < 0 {
				i = len(src)
			} else {
				i += nl - 1 // the newline itself is written on the next turn
			}
			cur.WriteByte(' ')
		case c == '/' && strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				end = len(src)
			} else {
				end += i + 4
			}
			if strings.HasPrefix(src[i:], "/*!") || strings.HasPrefix(src[i:], "/*+") {
				cur.WriteString(src[i:end])
			} else {
				cur.WriteByte(' ')
			}
			i = end - 1
		case c == ';':
			flush()
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return stmts
}

// quotedEnd returns the index just past the quoted token starting at
// src[start]. Backslash escapes apply inside '...' and "..." (the session
// sql_mode has no NO_BACKSLASH_ESCAPES); a doubled quote is read as two
// adjacent tokens, which splits the same way. An unterminated token runs to
// the end of src.
func quotedEnd(src string, start int) int {
	q := src[start]
	for i := start + 1; i < len(src); i++ {
		switch src[i] {
		case '\\':
			if q != '`' {
				i++
			}
		case q:
			return i + 1
		}
	}
	return len(src)
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}
