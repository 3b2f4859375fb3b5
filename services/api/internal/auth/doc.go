// Package auth verifies the Firebase ID tokens that callers of the api send
// as "Authorization: Bearer <token>", with the Firebase Admin SDK
// (firebase.google.com/go/v4).
//
// # Outcomes
//
// Verifier.Verify returns the caller's Identity, or an error that wraps one
// of two sentinels, which the HTTP error mapper turns into a status:
//
//   - ErrUnauthenticated (401): no header, not a Bearer header, a malformed,
//     forged, expired or revoked token, a token of another project, a token
//     of a disabled or deleted Firebase user.
//   - ErrUnavailable (503): the identity provider (Google, or the Auth
//     Emulator) could not be reached or failed, so the token could not be
//     judged. Never reported as 401: a client must not throw away a good
//     token because the provider had a bad moment.
//
// Which MyMONIT user (and role) the uid belongs to is not this package's
// business: an unknown uid is the caller's 403.
//
// # Revocation and the cache
//
// Every verification asks the provider whether the token was revoked or the
// user disabled (VerifyIDTokenAndCheckRevoked: one RPC). To keep that RPC
// off the hot path, a successful result is cached for
// min(token expiry, now+Config.CacheTTL), keyed by a SHA-256 hash of the
// token (raw tokens are never kept as keys), in a cache bounded to
// Config.CacheSize entries (oldest evicted first). The trade-off: a token
// revoked, or a user disabled, in Firebase is still accepted for at most
// CacheTTL (default 30s) by each api instance that recently saw it. Set
// MYMONIT_AUTH_CACHE_TTL=0 to check with the provider on every request.
// Failures are never cached.
//
// # The Auth Emulator
//
// The Admin SDK talks to the Firebase Auth Emulator instead of Google when
// FIREBASE_AUTH_EMULATOR_HOST is set, and then skips the signature check of
// ID tokens: anyone could mint a token for any uid. NewVerifier therefore
// refuses that variable unless Config.Mode is "dev" or "test", and says so.
//
// # Offline behaviour in production mode
//
// In production mode the SDK checks a token's signature against Google's
// public keys, fetched (and cached up to 24h) from www.googleapis.com. A
// token that fails the cheap local checks first (not three segments, no
// "kid" header, an algorithm other than RS256 such as "none", wrong
// audience or issuer, expired) is ErrUnauthenticated without any network
// access. A well-formed RS256 token whose signature cannot be checked
// because the keys cannot be fetched is ErrUnavailable: the verifier cannot
// tell a forged token from a good one, so it reports the outage rather than
// accept or reject.
package auth
