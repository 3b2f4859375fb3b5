package config_test

import (
	"fmt"
	"os"
	"time"

	"github.com/mymonit/mymonit/pkg/config"
)

func ExampleLoadFrom() {
	type Ingest struct {
		BatchSize int           `env:"MYMONIT_INGEST_BATCH_SIZE" default:"1000" min:"1" max:"100000" help:"measures per database transaction"`
		Flush     time.Duration `env:"MYMONIT_INGEST_FLUSH" default:"200ms" help:"longest wait before a partial batch is written"`
		DSN       string        `env:"MYMONIT_MYSQL_DSN" required:"true" help:"MySQL DSN"`
	}
	environment := map[string]string{
		"MYMONIT_INGEST_BATCH_SIZE": "0",
		"MYMONIT_INGEST_FLUSH":      "soon",
	}
	lookup := func(name string) (string, bool) {
		v, ok := environment[name]
		return v, ok
	}
	var cfg Ingest
	err := config.LoadFrom(lookup, os.ReadFile, &cfg)
	fmt.Println(err)

	environment = map[string]string{"MYMONIT_MYSQL_DSN": "mymonit:hunter2@tcp(db:3306)/mymonit"}
	if err := config.LoadFrom(lookup, os.ReadFile, &cfg); err != nil {
		fmt.Println(err)
		return
	}
	_ = config.Print(os.Stdout, cfg)
	// Output:
	// MYMONIT_INGEST_BATCH_SIZE=0: must be at least 1
	// MYMONIT_INGEST_FLUSH="soon": not a duration (for example 250ms, 30s, 5m, 1h30m)
	// MYMONIT_MYSQL_DSN is required (MySQL DSN)
	// MYMONIT_INGEST_BATCH_SIZE=1000
	// MYMONIT_INGEST_FLUSH=200ms
	// MYMONIT_MYSQL_DSN=mymonit:***@tcp(db:3306)/mymonit
}
