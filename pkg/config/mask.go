package config

import "strings"

// MaskCredentials returns s with the password of a URL-shaped value
// (scheme://user:password@host/...) or a MySQL-DSN-shaped value
// (user:password@tcp(host)/db) replaced by "***", and with the values of
// query parameters whose names suggest a secret (password, pwd, secret,
// token, api_key, ...) replaced too. Other text is returned unchanged. It
// errs on the side of masking: text that merely looks like credentials is
// masked as well.
func MaskCredentials(s string) string {
	return maskCredentials(s)
}

func maskCredentials(s string) string {
	if !strings.ContainsAny(s, "@?") {
		return s
	}
	if i := strings.Index(s, "://"); i > 0 && isScheme(s[:i]) {
		return maskURL(s, i+len("://"))
	}
	return maskDSN(s)
}

// isScheme reports whether s is a URL scheme (RFC 3986 section 3.1).
func isScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// maskURL masks the userinfo password and secret-looking query parameters
// of a URL whose authority starts at start. The authority ends at the first
// '/', '?' or '#' and the userinfo at its last '@', as net/url reads them.
func maskURL(s string, start int) string {
	end := len(s)
	if j := strings.IndexAny(s[start:], "/?#"); j >= 0 {
		end = start + j
	}
	authority := s[start:end]
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		if colon := strings.IndexByte(authority[:at], ':'); colon >= 0 {
			s = s[:start+colon+1] + Mask + s[start+at:]
		}
	}
	return maskQuery(s)
}

// maskDSN masks the password of a go-sql-driver/mysql DSN,
// [user[:password]@][net[(addr)]]/dbname[?params], read the way the driver
// reads it: the last '/' ends the address, the last '@' before it ends the
// credentials, the first ':' in them starts the password. A value without
// '/' is treated as all address.
func maskDSN(s string) string {
	head := len(s)
	if slash := strings.LastIndexByte(s, '/'); slash >= 0 {
		head = slash
	}
	if at := strings.LastIndexByte(s[:head], '@'); at >= 0 {
		if colon := strings.IndexByte(s[:at], ':'); colon >= 0 {
			s = s[:colon+1] + Mask + s[at:]
		}
	}
	return maskQuery(s)
}

// maskQuery masks the values of secret-looking parameters after the first
// '?' (up to a '#').
func maskQuery(s string) string {
	q := strings.IndexByte(s, '?')
	if q < 0 {
		return s
	}
	query, fragment := s[q+1:], ""
	if h := strings.IndexByte(query, '#'); h >= 0 {
		query, fragment = query[:h], query[h:]
	}
	// Substrings of parameter names whose values are masked.
	secretParams := [...]string{"pass", "pwd", "secret", "token", "apikey", "api_key", "access_key", "credential", "signature"}
	params := strings.Split(query, "&")
	changed := false
	for i, p := range params {
		name, _, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		lower := strings.ToLower(name)
		for _, sp := range secretParams {
			if strings.Contains(lower, sp) {
				params[i] = name + "=" + Mask
				changed = true
				break
			}
		}
	}
	if !changed {
		return s
	}
	return s[:q+1] + strings.Join(params, "&") + fragment
}
