package auth

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"time"

	firebase "firebase.google.com/go/v4"
	fbauth "firebase.google.com/go/v4/auth"
	"go.uber.org/zap"
	"google.golang.org/api/option"

	"github.com/mymonit/mymonit/pkg/logging"
)

var (
	// ErrUnauthenticated means the request carries no acceptable ID token:
	// answer 401.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrUnavailable means the identity provider could not judge the token
	// (unreachable, failing, timed out): answer 503, never 401.
	ErrUnavailable = errors.New("identity provider unavailable")
	// ErrEmulatorInProduction is NewVerifier's refusal to trust the Auth
	// Emulator outside dev/test mode.
	ErrEmulatorInProduction = errors.New("refusing the Firebase Auth Emulator in production mode")
)

// maxTokenLen bounds what is hashed and parsed; Firebase ID tokens are
// about 1 KB, a few KB with large custom claims.
const maxTokenLen = 16 << 10

// reservedClaim reports whether k is a standard or Firebase claim of an ID
// token, kept out of Identity.Claims so that it holds only custom claims
// (and no personal data such as the email or name).
func reservedClaim(k string) bool {
	switch k {
	case "iss", "aud", "exp", "iat", "nbf", "sub", "uid", "jti", "auth_time", "user_id",
		"firebase", "email", "email_verified", "name", "picture", "phone_number":
		return true
	}
	return false
}

// Identity is the verified caller.
type Identity struct {
	// UID is the Firebase user id, the key to the MyMONIT user.
	UID string
	// Email is the address in the token, if any; personal data, redacted
	// wherever it is printed or logged.
	Email logging.Email
	// ExpiresAt is the token's expiry.
	ExpiresAt time.Time
	// Claims are the custom claims of the token (set through the Admin SDK
	// or accounts:update), without the standard ones. Read-only.
	Claims map[string]any
}

// tokenChecker is the part of *firebase auth.Client the Verifier uses.
type tokenChecker interface {
	VerifyIDTokenAndCheckRevoked(ctx context.Context, idToken string) (*fbauth.Token, error)
}

// Params are what NewVerifier needs.
type Params struct {
	Config Config
	// Logger receives one line at construction; nil logs nothing.
	Logger *zap.Logger
	// Now is the clock of the cache; nil means time.Now.
	Now func() time.Time
}

// Verifier checks Firebase ID tokens. Safe for concurrent use.
type Verifier struct {
	checker tokenChecker
	now     func() time.Time
	ttl     time.Duration
	timeout time.Duration
	cache   *cache
}

// NewVerifier builds a Verifier for p.Config.ProjectID. It makes no network
// call. It refuses FIREBASE_AUTH_EMULATOR_HOST unless p.Config.Mode is dev
// or test, because the Admin SDK then skips signature checks.
func NewVerifier(ctx context.Context, p Params) (*Verifier, error) {
	if err := p.Config.Validate(); err != nil {
		return nil, fmt.Errorf("auth configuration: %w", err)
	}
	log := p.Logger
	if log == nil {
		log = zap.NewNop()
	}
	emulator := os.Getenv(EmulatorHostEnv)
	if emulator != "" && p.Config.Mode == ModeProduction {
		return nil, fmt.Errorf("%w: %s=%q is set and MYMONIT_MODE=%s; with that variable the Firebase Admin SDK "+
			"accepts unsigned ID tokens, so anyone could sign in as anyone: unset %s in production, "+
			"or set MYMONIT_MODE=dev (or test) on a development machine",
			ErrEmulatorInProduction, EmulatorHostEnv, emulator, p.Config.Mode, EmulatorHostEnv)
	}
	var opts []option.ClientOption
	if emulator == "" && p.Config.CredentialsFile != "" {
		opts = append(opts, option.WithCredentialsFile(p.Config.CredentialsFile))
	}
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: p.Config.ProjectID}, opts...)
	if err != nil {
		return nil, fmt.Errorf("firebase app for project %q: %w", p.Config.ProjectID, err)
	}
	client, err := app.Auth(ctx)
	if err != nil {
		return nil, fmt.Errorf("firebase auth client for project %q (set GOOGLE_APPLICATION_CREDENTIALS to a "+
			"service account file, or run where Application Default Credentials exist): %w", p.Config.ProjectID, err)
	}
	fields := []zap.Field{
		zap.String("firebase.project_id", p.Config.ProjectID),
		zap.String("mode", p.Config.Mode),
		zap.Duration("cache_ttl", p.Config.CacheTTL),
		zap.Int("cache_size", p.Config.CacheSize),
	}
	if emulator != "" {
		log.Warn("verifying Firebase ID tokens with the Auth Emulator: signatures are not checked",
			append(fields, zap.String("firebase.emulator_host", emulator))...)
	} else {
		log.Info("verifying Firebase ID tokens", fields...)
	}
	return newVerifier(client, p), nil
}

// newVerifier builds a Verifier around checker (the SDK client, or a fake in
// tests). p.Config must be valid.
func newVerifier(checker tokenChecker, p Params) *Verifier {
	now := p.Now
	if now == nil {
		now = time.Now
	}
	size := p.Config.CacheSize
	if p.Config.CacheTTL <= 0 {
		size = 0
	}
	return &Verifier{
		checker: checker,
		now:     now,
		ttl:     p.Config.CacheTTL,
		timeout: p.Config.Timeout,
		cache:   newCache(size),
	}
}

// Verify checks the value of an Authorization header, "Bearer <ID token>",
// and returns the caller. Its errors wrap ErrUnauthenticated or
// ErrUnavailable (see the package documentation); they never contain the
// token.
func (v *Verifier) Verify(ctx context.Context, authorizationHeader string) (Identity, error) {
	token, err := bearer(authorizationHeader)
	if err != nil {
		return Identity{}, err
	}
	key := keyOf(token)
	now := v.now()
	if id, ok := v.cache.get(key, now); ok {
		id.Claims = maps.Clone(id.Claims)
		return id, nil
	}

	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	tok, err := v.checker.VerifyIDTokenAndCheckRevoked(ctx, token)
	if err != nil {
		return Identity{}, classify(err)
	}
	id := identityOf(tok)
	until := now.Add(v.ttl)
	if id.ExpiresAt.Before(until) {
		until = id.ExpiresAt
	}
	if until.After(now) {
		v.cache.put(key, id, until)
		id.Claims = maps.Clone(id.Claims)
	}
	return id, nil
}

// bearer extracts the token of a "Bearer" Authorization header value.
func bearer(header string) (string, error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return "", fmt.Errorf("%w: no Authorization header", ErrUnauthenticated)
	}
	scheme, token, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", fmt.Errorf("%w: Authorization header is not a Bearer token", ErrUnauthenticated)
	}
	token = strings.TrimSpace(token)
	switch {
	case token == "":
		return "", fmt.Errorf("%w: empty Bearer token", ErrUnauthenticated)
	case len(token) > maxTokenLen:
		return "", fmt.Errorf("%w: Bearer token longer than %d bytes", ErrUnauthenticated, maxTokenLen)
	}
	return token, nil
}

// classify maps an Admin SDK error to ErrUnauthenticated (the token is
// bad) or ErrUnavailable (the provider could not judge it), keeping the SDK
// error in the chain. The SDK's messages describe claims, never the token.
func classify(err error) error {
	var reason string
	switch {
	case fbauth.IsIDTokenExpired(err):
		reason = "ID token expired"
	case fbauth.IsIDTokenRevoked(err):
		reason = "ID token revoked"
	case fbauth.IsUserDisabled(err):
		reason = "Firebase user disabled"
	case fbauth.IsUserNotFound(err):
		reason = "Firebase user of the token no longer exists"
	case fbauth.IsIDTokenInvalid(err):
		reason = "invalid ID token"
	case fbauth.IsTenantIDMismatch(err):
		reason = "ID token of another tenant"
	default:
		// Certificate fetch failures, network errors, 5xx and timeouts
		// reaching Google or the emulator, rejected service credentials:
		// nothing was learnt about the token.
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrUnauthenticated, reason, err)
}

// identityOf converts a verified SDK token.
func identityOf(tok *fbauth.Token) Identity {
	id := Identity{UID: tok.UID, ExpiresAt: time.Unix(tok.Expires, 0)}
	if email, ok := tok.Claims["email"].(string); ok {
		id.Email = logging.Email(email)
	}
	claims := maps.Clone(tok.Claims)
	maps.DeleteFunc(claims, func(k string, _ any) bool { return reservedClaim(k) })
	if len(claims) > 0 {
		id.Claims = claims
	}
	return id
}
