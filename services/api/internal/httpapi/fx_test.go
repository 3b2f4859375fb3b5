package httpapi_test

import (
	"testing"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/services/api/internal/httpapi"
)

func TestModuleValidates(t *testing.T) {
	err := fx.ValidateApp(
		httpapi.Module,
		fx.Supply(httpapi.Config{Addr: "127.0.0.1:0"}, zap.NewNop(), storage.NewStore(storage.StoreParams{})),
		fx.Provide(func() httpapi.Verifier { return nopVerifier{} }),
	)
	if err != nil {
		t.Fatal(err)
	}
}
