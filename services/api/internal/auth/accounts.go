package auth

import (
	"context"
	"fmt"
	"os"

	firebase "firebase.google.com/go/v4"
	fbauth "firebase.google.com/go/v4/auth"
	"google.golang.org/api/option"
)

// Accounts deletes Firebase accounts, for the erasure of a user that asks
// for it. Safe for concurrent use.
type Accounts struct {
	client *fbauth.Client
}

// NewAccounts returns the Firebase Admin SDK client of cfg's project, with
// the credentials file of cfg outside the emulator. NewVerifier refuses the
// emulator outside dev/test mode; construct that first. It makes no network
// call.
func NewAccounts(ctx context.Context, cfg Config) (*Accounts, error) {
	var opts []option.ClientOption
	if os.Getenv(EmulatorHostEnv) == "" && cfg.CredentialsFile != "" {
		opts = append(opts, option.WithCredentialsFile(cfg.CredentialsFile))
	}
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: cfg.ProjectID}, opts...)
	if err != nil {
		return nil, fmt.Errorf("firebase app for project %q: %w", cfg.ProjectID, err)
	}
	client, err := app.Auth(ctx)
	if err != nil {
		return nil, fmt.Errorf("firebase auth client for project %q: %w", cfg.ProjectID, err)
	}
	return &Accounts{client: client}, nil
}

// DeleteUser deletes the Firebase account of uid. An account that does not
// exist is not an error: it is what the deletion asks for, and an erasure
// that failed half way is retried that way.
func (a *Accounts) DeleteUser(ctx context.Context, uid string) error {
	err := a.client.DeleteUser(ctx, uid)
	if err == nil || fbauth.IsUserNotFound(err) {
		return nil
	}
	return fmt.Errorf("delete Firebase account: %w", err)
}
