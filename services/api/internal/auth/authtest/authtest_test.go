package authtest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mymonit/mymonit/services/api/internal/auth/authtest"
)

// TestRunSignUpContext checks the entry points for code that is not a
// test against the real emulator: Run finds or starts one, SignUpContext
// creates an account with a token, and a second sign-up with the same
// e-mail is an error naming the emulator's reason.
func TestRunSignUpContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	emu, stop, err := authtest.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	if emu.Host == "" || emu.ProjectID != authtest.ProjectID {
		t.Fatalf("emulator %+v: want a host and project %s", emu, authtest.ProjectID)
	}
	email := fmt.Sprintf("runtest.%d@example.org", time.Now().UnixNano())
	u, err := emu.SignUpContext(ctx, email, "run-test-password")
	if err != nil {
		t.Fatal(err)
	}
	if u.UID == "" || u.Email != email || strings.Count(u.IDToken, ".") != 2 {
		t.Errorf("SignUpContext = uid %q, email %q, token with %d dots; want a uid, the e-mail and a JWT",
			u.UID, u.Email, strings.Count(u.IDToken, "."))
	}
	if _, err := emu.SignUpContext(ctx, email, "run-test-password"); err == nil || !strings.Contains(err.Error(), "EMAIL_EXISTS") {
		t.Errorf("second sign-up with the same e-mail: err = %v, want EMAIL_EXISTS", err)
	}
}
