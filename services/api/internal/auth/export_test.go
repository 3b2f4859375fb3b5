package auth

import (
	"context"

	fbauth "firebase.google.com/go/v4/auth"
)

// CheckFunc stands in for the Admin SDK client in unit tests.
type CheckFunc func(ctx context.Context, idToken string) (*fbauth.Token, error)

// VerifyIDTokenAndCheckRevoked calls f.
func (f CheckFunc) VerifyIDTokenAndCheckRevoked(ctx context.Context, idToken string) (*fbauth.Token, error) {
	return f(ctx, idToken)
}

// NewVerifierWith builds a Verifier around a fake SDK client.
func NewVerifierWith(check CheckFunc, p Params) *Verifier { return newVerifier(check, p) }

// CacheLen reports the number of cached entries.
func (v *Verifier) CacheLen() int { return v.cache.len() }
