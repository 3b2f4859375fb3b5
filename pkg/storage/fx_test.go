package storage_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/pkg/testenv"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

func TestModuleValidates(t *testing.T) {
	err := fx.ValidateApp(
		storage.Module,
		fx.Supply(storage.Config{DSN: "root@tcp(127.0.0.1:3306)/x", MaxOpenConns: 1}),
		fx.Provide(zap.NewNop),
		fx.Invoke(func(*sql.DB, *storage.Store) {}),
	)
	if err != nil {
		t.Fatal(err)
	}
}

func TestModuleStart(t *testing.T) {
	tests := []struct {
		name    string
		migrate bool
		wantErr error
	}{
		{"migrate on start", true, nil},
		{"check refuses an unmigrated schema", false, storage.ErrSchemaBehind},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := storage.Config{DSN: testenv.MySQLDatabase(t), MaxOpenConns: 4, MaxIdleConns: 4, MigrateOnStart: tt.migrate}
			var store *storage.Store
			app := fxtest.New(t,
				storage.Module,
				fx.Supply(cfg),
				fx.Supply(zaptest.NewLogger(t)),
				fx.Populate(&store),
			)
			err := app.Start(testCtx(t))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Start = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			defer app.RequireStop()
			if _, err := store.CreateExperiment(context.Background(), storage.Experiment{Slug: "fx"}); err != nil {
				t.Errorf("CreateExperiment through the module's store: %v", err)
			}
		})
	}
}
