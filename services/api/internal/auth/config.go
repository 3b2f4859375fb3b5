package auth

import (
	"fmt"
	"time"
)

// Modes a service runs in (Config.Mode).
const (
	ModeProduction = "production"
	ModeDev        = "dev"
	ModeTest       = "test"
)

// EmulatorHostEnv is the variable with which the Admin SDK switches to the
// Firebase Auth Emulator (host:port), skipping signature checks.
const EmulatorHostEnv = "FIREBASE_AUTH_EMULATOR_HOST"

// Config is what the verifier reads from the environment (through
// pkg/config). FIREBASE_AUTH_EMULATOR_HOST is deliberately not a field: the
// Admin SDK reads it from the process environment itself, so NewVerifier
// checks the process environment, which is what the SDK will obey.
type Config struct {
	ProjectID       string        `env:"MYMONIT_FIREBASE_PROJECT_ID" required:"true" help:"Firebase project whose ID tokens are accepted (demo-mymonit with the Auth Emulator)"`
	Mode            string        `env:"MYMONIT_MODE" default:"production" oneof:"production dev test" help:"dev/test allow FIREBASE_AUTH_EMULATOR_HOST (the emulator's tokens are unsigned); production refuses it"`
	CredentialsFile string        `env:"GOOGLE_APPLICATION_CREDENTIALS" help:"service account JSON for the Firebase Admin SDK; empty: Application Default Credentials; unused with the emulator"`
	CacheTTL        time.Duration `env:"MYMONIT_AUTH_CACHE_TTL" default:"30s" min:"0s" max:"5m" help:"how long a verified token is trusted before revocation is checked again (never beyond its expiry); 0 checks every request"`
	CacheSize       int           `env:"MYMONIT_AUTH_CACHE_SIZE" default:"10000" min:"0" max:"1000000" help:"most verified tokens cached; 0 disables the cache"`
	Timeout         time.Duration `env:"MYMONIT_AUTH_TIMEOUT" default:"5s" min:"100ms" max:"1m" help:"longest a verification waits for the identity provider before answering 503"`
}

// Validate checks what the field tags cannot express. It also runs from
// pkg/config's Load.
func (c Config) Validate() error {
	switch c.Mode {
	case ModeProduction, ModeDev, ModeTest:
	default:
		return fmt.Errorf("MYMONIT_MODE=%q: must be one of production, dev, test", c.Mode)
	}
	if c.ProjectID == "" {
		return fmt.Errorf("MYMONIT_FIREBASE_PROJECT_ID is required (the Firebase project whose ID tokens are accepted)")
	}
	if c.CacheTTL < 0 {
		return fmt.Errorf("MYMONIT_AUTH_CACHE_TTL=%s: must not be negative", c.CacheTTL)
	}
	if c.CacheSize < 0 {
		return fmt.Errorf("MYMONIT_AUTH_CACHE_SIZE=%d: must not be negative", c.CacheSize)
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("MYMONIT_AUTH_TIMEOUT=%s: must be positive", c.Timeout)
	}
	return nil
}

// DefaultConfig is Config with the defaults of its tags, for a project, for
// code that builds a Config without pkg/config (tests, tools).
func DefaultConfig(projectID string) Config {
	return Config{
		ProjectID: projectID,
		Mode:      ModeProduction,
		CacheTTL:  30 * time.Second,
		CacheSize: 10000,
		Timeout:   5 * time.Second,
	}
}
