package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/mymonit/mymonit/pkg/config"
	"github.com/mymonit/mymonit/pkg/storage"
)

// BootstrapConfig is what bootstrap-admin reads from the environment: only
// the database (no Firebase access is needed).
type BootstrapConfig struct {
	MySQL storage.Config
}

// bootstrapAdmin is the bootstrap-admin command: it creates the first
// admin for a Firebase uid, refusing when a live admin exists unless
// -force. It prints the new user's id, never the name or email.
func bootstrapAdmin(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bootstrap-admin", flag.ContinueOnError)
	fs.SetOutput(out)
	uid := fs.String("uid", "", "Firebase uid of the administrator (required)")
	name := fs.String("name", "", "display name (optional)")
	email := fs.String("email", "", "e-mail address (optional)")
	force := fs.Bool("force", false, "create the admin even though another admin exists")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *uid == "" || fs.NArg() > 0 {
		return errors.New("bootstrap-admin: -uid UID is required, and takes no arguments")
	}
	var cfg BootstrapConfig
	if err := config.Load(&cfg); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	db, err := storage.Open(ctx, cfg.MySQL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := storage.Check(ctx, db); err != nil {
		return fmt.Errorf("bootstrap-admin: the database schema is not ready (apply the migrations first): %w", err)
	}
	store := storage.NewStore(storage.StoreParams{DB: db})
	defer store.Close()
	u, err := createFirstAdmin(ctx, store, storage.User{FirebaseUID: *uid, Name: *name, Email: *email, Role: storage.RoleAdmin}, *force)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "created admin user %d\n", u.ID)
	return nil
}

// errAdminExists is the refusal of bootstrap-admin without -force.
var errAdminExists = errors.New("an admin already exists: manage users through the API, or pass -force")

// createFirstAdmin creates u unless a live admin exists and force is
// false.
func createFirstAdmin(ctx context.Context, store *storage.Store, u storage.User, force bool) (storage.User, error) {
	n, err := store.CountUsers(ctx, storage.RoleAdmin)
	if err != nil {
		return storage.User{}, err
	}
	if n > 0 && !force {
		return storage.User{}, fmt.Errorf("bootstrap-admin: %w", errAdminExists)
	}
	created, err := store.CreateUser(ctx, u)
	if errors.Is(err, storage.ErrConflict) {
		return storage.User{}, fmt.Errorf("bootstrap-admin: a user with this Firebase uid exists (change its role through the API): %w", err)
	}
	if err != nil {
		return storage.User{}, fmt.Errorf("bootstrap-admin: %w", err)
	}
	return created, nil
}
