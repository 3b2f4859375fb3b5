package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/config"
	"github.com/mymonit/mymonit/pkg/logging"
	"github.com/mymonit/mymonit/pkg/storage"
)

// BootstrapConfig is what bootstrap-admin reads from the environment: the
// database and the logs, for its audit event (no Firebase access is needed).
type BootstrapConfig struct {
	MySQL storage.Config
	Log   logging.Config
}

// bootstrapAdmin is the bootstrap-admin command: it creates the first
// admin for a Firebase uid, refusing when a live admin exists unless
// -force. It prints the new user's id, never the name or email, and its
// audit event (action user.bootstrap_admin), which also goes to Logstash when
// one is configured.
func bootstrapAdmin(ctx context.Context, args []string, out io.Writer) (err error) {
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
	logOpts := cfg.Log.Options("api", version)
	logOpts.Stdout = out
	logs, err := logging.New(logOpts)
	if err != nil {
		return fmt.Errorf("logging: %w", err)
	}
	defer func() {
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		err = errors.Join(err, logs.Close(c))
	}()
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
	auditBootstrap(logs.Audit().Named("api"), u, *force, err)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "created admin user %d\n", u.ID)
	return nil
}

// auditBootstrap logs the audit event of bootstrap-admin. Its actor is the
// operator at the command line, not a MyMONIT user: the event has no
// user.id.
func auditBootstrap(log *zap.Logger, created storage.User, force bool, err error) {
	const action = "user.bootstrap_admin"
	fields := []zap.Field{zap.Bool("mymonit.force", force)}
	outcome := logging.OutcomeSuccess
	if err != nil {
		outcome = logging.OutcomeFailure
		fields = append(fields, zap.String("event.reason", err.Error()))
	} else {
		fields = append(fields, zap.String("mymonit.target.user_id", strconv.FormatInt(created.ID, 10)))
	}
	log.Info("audit "+action, append([]zap.Field{logging.Audit(action, outcome)}, fields...)...)
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
