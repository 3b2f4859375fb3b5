package httpapi_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/health"
	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/services/api/internal/httpapi"
)

type nopVerifier struct{ httpapi.Verifier }

// serverRoutes are the patterns the server registers.
func serverRoutes(t testing.TB) []string {
	t.Helper()
	s, err := httpapi.New(httpapi.Params{Store: storage.NewStore(storage.StoreParams{}), Verifier: nopVerifier{}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	return s.RoutePatterns()
}

// TestRoutesMatchSpec checks that every registered route, the operational
// endpoints the api serves beside them included, is documented and every
// documented operation is registered.
func TestRoutesMatchSpec(t *testing.T) {
	doc, err := httpapi.Spec()
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	registered := append(serverRoutes(t), health.New(health.Options{}).Routes()...)
	slices.Sort(documented)
	slices.Sort(registered)
	if diff := cmp.Diff(documented, registered); diff != "" {
		t.Errorf("OpenAPI operations (-) vs registered routes (+):\n%s", diff)
	}
}

func TestServesSpec(t *testing.T) {
	s, err := httpapi.New(httpapi.Params{Store: storage.NewStore(storage.StoreParams{}), Verifier: nopVerifier{}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "/v1/openapi.json", nil)
	w := newRecorder()
	s.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("status %d, %s", w.Code, w.Header().Get("Content-Type"))
	}
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil || doc.OpenAPI == "" || len(doc.Paths) == 0 {
		t.Errorf("served document: %v %+v", err, doc)
	}
}
