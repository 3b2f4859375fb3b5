package logging

import "strings"

// Scrub masks secrets and personal data inside free text:
//
//   - e-mail addresses                      → [REDACTED]
//   - URL passwords, scheme://user:pass@host → scheme://user:***@host
//   - DSN passwords, user:pass@tcp(host)/db  → user:***@tcp(host)/db
//   - key=value pairs whose key satisfies IsSensitiveKey (query strings,
//     libpq DSNs: token=..., password="...") → key=[REDACTED]
//   - JWTs (eyJ...)                         → [REDACTED]
//   - "Bearer <token>"                      → Bearer [REDACTED]
//
// The logger applies it to messages and string values; it is exported for
// services that print text from elsewhere (configuration, upstream errors).
// Text without '@', '=', "eyJ" or "bearer" (the common case) is returned
// as is, without allocating; other text costs one linear scan per kind of
// secret it may hold, and allocates only when something is masked.
func Scrub(s string) string {
	hasAt := strings.IndexByte(s, '@') >= 0
	hasEq := strings.IndexByte(s, '=') >= 0
	hasJWT := strings.Contains(s, "eyJ")
	hasBearer := indexBearer(s, 0) >= 0
	if !hasAt && !hasEq && !hasJWT && !hasBearer {
		return s
	}
	// Structured secrets first, so that a looser rule cannot cut them up (a
	// bearer token stops at ':', which would leave "://user:pass@").
	if hasAt {
		s = scrubURL(s)
		s = scrubDSN(s)
		s = scrubEmail(s)
	}
	if hasEq {
		s = scrubKV(s)
	}
	if hasJWT {
		s = scrubJWT(s)
	}
	if hasBearer {
		s = scrubBearer(s)
	}
	return s
}

// rewriter copies src with replacements made in increasing order, and
// allocates only on the first one.
type rewriter struct {
	src     string
	b       strings.Builder
	last    int
	changed bool
}

func (r *rewriter) replace(start, end int, with string) {
	if !r.changed {
		r.b.Grow(len(r.src))
		r.changed = true
	}
	r.b.WriteString(r.src[r.last:start])
	r.b.WriteString(with)
	r.last = end
}

func (r *rewriter) String() string {
	if !r.changed {
		return r.src
	}
	r.b.WriteString(r.src[r.last:])
	return r.b.String()
}

func isLetter(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isAlnum(c byte) bool  { return isLetter(c) || isDigit(c) }
func isWord(c byte) bool   { return isAlnum(c) || c == '_' }
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// isDelim ends a URL authority, a DSN or a quoted context.
func isDelim(c byte) bool {
	return isSpace(c) || c == '"' || c == '\'' || c == '<' || c == '>'
}

// scrubURL masks the password of scheme://user:password@host. The password
// runs to the last '@' before the end of the authority, as net/url parses
// it.
func scrubURL(s string) string {
	r := rewriter{src: s}
	for i := 0; ; {
		k := strings.Index(s[i:], "://")
		if k < 0 {
			break
		}
		k += i
		i = k + 3
		if k == 0 || !(isAlnum(s[k-1]) || s[k-1] == '+' || s[k-1] == '.' || s[k-1] == '-') {
			continue // no scheme
		}
		j := i
		for j < len(s) && !isDelim(s[j]) && s[j] != ':' && s[j] != '/' && s[j] != '@' && s[j] != '?' && s[j] != '#' {
			j++
		}
		if j >= len(s) || s[j] != ':' {
			continue
		}
		p, e, at := j+1, j+1, -1
		for e < len(s) && !isDelim(s[e]) && s[e] != '?' && s[e] != '#' {
			if s[e] == '@' {
				at = e
			}
			e++
		}
		if at < 0 {
			i = e
			continue
		}
		r.replace(p, at, "***")
		i = at + 1
	}
	return r.String()
}

// scrubDSN masks the password of go-sql-driver DSNs: user:password@tcp(host)/db,
// user:password@unix(path)/db, user:password@/db.
func scrubDSN(s string) string {
	r := rewriter{src: s}
	floor := 0 // backward scans stop at the previous DSN
	for i := 0; ; {
		a := strings.IndexByte(s[i:], '@')
		if a < 0 {
			break
		}
		a += i
		i = a + 1
		q := a + 1
		for q < len(s) && isWord(s[q]) {
			q++
		}
		if q >= len(s) || !(s[q] == '(' || (q == a+1 && s[q] == '/')) {
			continue
		}
		start := a
		for start > floor && !isDelim(s[start-1]) {
			start--
		}
		colon := -1
		for x := start; x < a; x++ {
			if s[x] == ':' && !strings.HasPrefix(s[x+1:], "//") {
				colon = x
				break
			}
		}
		if colon < 0 {
			continue
		}
		r.replace(colon+1, a, "***")
		floor = a
	}
	return r.String()
}

// scrubEmail masks e-mail addresses: local@label.label.tld, with a
// top-level domain of two letters or more.
func scrubEmail(s string) string {
	r := rewriter{src: s}
	floor := 0
	for i := 0; ; {
		a := strings.IndexByte(s[i:], '@')
		if a < 0 {
			break
		}
		a += i
		i = a + 1
		start := a
		for start > floor && isLocal(s[start-1]) {
			start--
		}
		if start == a {
			continue
		}
		end := domainEnd(s, a+1)
		if end < 0 {
			continue
		}
		r.replace(start, end, Redacted)
		floor, i = end, end
	}
	return r.String()
}

func isLocal(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

// domainEnd returns the end of the longest domain name starting at from,
// or -1.
func domainEnd(s string, from int) int {
	best, label := -1, 0
	for x := from; x < len(s); x++ {
		c := s[x]
		switch {
		case c == '.':
			if label == 0 {
				return best
			}
			n := 0
			for x+1+n < len(s) && isLetter(s[x+1+n]) {
				n++
			}
			if n >= 2 {
				best = x + 1 + n
			}
			label = 0
		case isAlnum(c) || c == '-':
			label++
		default:
			return best
		}
	}
	return best
}

// scrubKV masks the value of key=value when the key is sensitive; the value
// is quoted or runs to a space, '&', ';', ',' or quote.
func scrubKV(s string) string {
	r := rewriter{src: s}
	floor := 0
	for i := 0; ; {
		e := strings.IndexByte(s[i:], '=')
		if e < 0 {
			break
		}
		e += i
		i = e + 1
		start := e
		for start > floor && (isWord(s[start-1]) || s[start-1] == '.' || s[start-1] == '-') {
			start--
		}
		if start == e || !IsSensitiveKey(s[start:e]) {
			continue
		}
		v, end := e+1, -1
		switch {
		case v >= len(s):
		case s[v] == '"' || s[v] == '\'':
			// Mask inside the quotes, keeping them.
			if k := strings.IndexByte(s[v+1:], s[v]); k >= 0 {
				v, end = v+1, v+1+k
			}
		default:
			end = v
			for end < len(s) && !isSpace(s[end]) && s[end] != '&' && s[end] != ';' && s[end] != ',' && s[end] != '"' && s[end] != '\'' {
				end++
			}
			if end == v {
				end = -1
			}
		}
		if end < 0 {
			continue
		}
		r.replace(v, end, Redacted)
		floor, i = end, end
	}
	return r.String()
}

// scrubJWT masks header.payload[.signature] tokens whose header is
// base64url JSON ("eyJ" is `{"`).
func scrubJWT(s string) string {
	r := rewriter{src: s}
	for i := 0; ; {
		j := strings.Index(s[i:], "eyJ")
		if j < 0 {
			break
		}
		j += i
		x := j + 3
		i = x
		if n := base64URLRun(s, x); n == 0 {
			continue
		} else {
			x += n
		}
		if x >= len(s) || s[x] != '.' {
			continue
		}
		x++
		n := base64URLRun(s, x)
		if n == 0 {
			continue
		}
		x += n
		if x < len(s) && s[x] == '.' {
			x++
			x += base64URLRun(s, x)
		}
		r.replace(j, x, Redacted)
		i = x
	}
	return r.String()
}

func base64URLRun(s string, from int) int {
	n := 0
	for from+n < len(s) && (isWord(s[from+n]) || s[from+n] == '-') {
		n++
	}
	return n
}

// scrubBearer masks the token after the word "bearer" (any case).
func scrubBearer(s string) string {
	r := rewriter{src: s}
	for i := 0; ; {
		k := indexBearer(s, i)
		if k < 0 {
			break
		}
		x := k + len("bearer")
		i = x
		for x < len(s) && isSpace(s[x]) {
			x++
		}
		if x == i {
			continue
		}
		t := x
		for x < len(s) && isTokenChar(s[x]) {
			x++
		}
		if x == t {
			continue
		}
		if strings.EqualFold(s[t:x], "bearer") {
			i = t // "Bearer Bearer <token>": the second one introduces it
			continue
		}
		for x < len(s) && s[x] == '=' {
			x++
		}
		r.replace(t, x, Redacted)
		i = x
	}
	return r.String()
}

// isTokenChar reports whether c belongs to an RFC 6750 bearer token.
func isTokenChar(c byte) bool {
	return isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
}

// indexBearer returns the index of the first word "bearer" (any case) at or
// after from, or -1.
func indexBearer(s string, from int) int {
	for i := from; i+len("bearer") <= len(s); {
		j := strings.IndexAny(s[i:], "bB")
		if j < 0 {
			return -1
		}
		i += j
		if i+len("bearer") <= len(s) && strings.EqualFold(s[i:i+len("bearer")], "bearer") && (i == 0 || !isWord(s[i-1])) {
			return i
		}
		i++
	}
	return -1
}
