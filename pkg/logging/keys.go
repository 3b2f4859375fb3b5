package logging

import "strings"

// sensitiveSuffixes are matched, case-insensitively, against the end of the
// last dot-separated segment of a key, optionally followed by a plural "s":
// "db_password", "accessToken", "X-Api-Key" and "credentials" all match.
var sensitiveSuffixes = [...]string{
	"password", "passwd", "pwd", "passphrase",
	"secret", "token",
	"authorization", "cookie",
	"email", "e-mail",
	"dsn",
	"api_key", "api-key", "apikey",
	"secret_key", "secret-key", "secretkey",
	"access_key", "access-key", "accesskey",
	"private_key", "private-key", "privatekey",
	"credential",
	"full_name", "fullname", "username", "user_name",
}

// suffixesByLastByte indexes sensitiveSuffixes by their last byte so that
// most keys are rejected after one table lookup.
type suffixIndex [256][]string

func buildSuffixIndex() *suffixIndex {
	var idx suffixIndex
	for _, s := range sensitiveSuffixes {
		b := s[len(s)-1]
		idx[b] = append(idx[b], s)
	}
	return &idx
}

// suffixes is read-only after package initialisation.
var suffixes = buildSuffixIndex()

// IsSensitiveKey reports whether a field key names a value that is redacted
// whatever it holds. The key may be a dotted path
// ("http.request.headers.authorization"); matching is case-insensitive, on
// the last segment, by suffix with an optional plural "s": password, passwd,
// pwd, passphrase, secret, token, authorization, cookie, email, e-mail,
// dsn, api_key, apikey, secret_key, access_key, private_key, credential,
// full_name, username (so "db_password", "id_token", "refreshToken",
// "set-cookie", "X-Api-Key" and "credentials" match). A last segment "name"
// matches under a "user" segment: the ECS user.name, client.user.name,
// user.target.name. Services can use it to mask configuration they print.
func IsSensitiveKey(key string) bool { return sensitivePath("", key) }

// sensitivePath is IsSensitiveKey(prefix + "." + key) without building the
// joined string.
func sensitivePath(prefix, key string) bool {
	seg := key
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		seg = key[i+1:]
	}
	if seg == "" {
		return false
	}
	if matchSuffix(seg) {
		return true
	}
	if n := len(seg); n > 1 && (seg[n-1] == 's' || seg[n-1] == 'S') && matchSuffix(seg[:n-1]) {
		return true
	}
	if strings.EqualFold(seg, "name") {
		return underUser(key[:len(key)-len(seg)]) || underUser(prefix)
	}
	return false
}

func matchSuffix(seg string) bool {
	last := seg[len(seg)-1]
	if 'A' <= last && last <= 'Z' {
		last += 'a' - 'A'
	}
	for _, s := range suffixes[last] {
		if len(seg) >= len(s) && strings.EqualFold(seg[len(seg)-len(s):], s) {
			return true
		}
	}
	return false
}

// underUser reports whether a dotted path has a segment "user".
func underUser(path string) bool {
	for path != "" {
		seg := path
		if i := strings.IndexByte(path, '.'); i >= 0 {
			seg, path = path[:i], path[i+1:]
		} else {
			path = ""
		}
		if strings.EqualFold(seg, "user") {
			return true
		}
	}
	return false
}

// joinKey returns the dotted path of key under prefix.
func joinKey(prefix, key string) string {
	if prefix == "" {
		return key
	}
	if key == "" {
		return prefix
	}
	return prefix + "." + key
}
