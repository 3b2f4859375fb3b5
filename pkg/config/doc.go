// Package config loads a service's settings from the environment into a
// struct described by field tags, validates them, and renders them for the
// start-up log and for the configuration reference in the README.
//
// # Tags
//
//	type Ingest struct {
//		BatchSize int           `env:"MYMONIT_INGEST_BATCH_SIZE" default:"1000" min:"1" max:"100000" help:"measures per database transaction"`
//		Flush     time.Duration `env:"MYMONIT_INGEST_FLUSH" default:"200ms" help:"longest wait before a partial batch is written"`
//		QueueType string        `env:"MYMONIT_QUEUE_TYPE" default:"quorum" oneof:"quorum classic" help:"RabbitMQ queue type"`
//		DSN       string        `env:"MYMONIT_MYSQL_DSN" required:"true" secret:"true" help:"MySQL DSN"`
//		MySQL     storage.Config // nested structs are walked; their fields carry their own tags
//	}
//
// env names the variable. default is used when the variable is unset or
// empty. required:"true" makes an unset or empty variable an error (a field
// cannot be both required and defaulted). min and max bound numbers and
// durations (written as durations, e.g. min:"1s") and the item count of
// []string. oneof lists the allowed values of a string, or of each item of a
// []string, separated by spaces. secret:"true" masks the value wherever this
// package shows it.
//
// Supported field types: string, bool, every int and uint size, float32,
// float64, time.Duration, []string (comma separated, items trimmed, empty
// items dropped) and any type whose pointer implements
// encoding.TextUnmarshaler (for example zapcore.Level). Struct fields without
// an env tag, named or embedded, by value or by pointer, are walked
// recursively when they declare variables somewhere inside, so a service
// composes the Config structs of the packages it uses; Load allocates nil
// pointers to such structs. Other untagged fields (a *zap.Logger, a
// time.Time) are left alone. A tag the package cannot honour (an
// unsupported type, an env tag on an unexported field, a malformed bound, a
// variable declared twice, a struct that contains itself) is a programming
// error that Load reports before reading anything.
//
// An empty variable counts as unset: the default applies (or, when the
// variable is required, the error), which is what `NAME=` in a compose file
// or an env file means to most readers.
//
// # Secrets in files
//
// For every variable NAME, NAME_FILE may name a file holding the value
// instead (Docker and Kubernetes secrets); trailing newlines are trimmed.
// Setting both NAME and NAME_FILE is an error.
//
// # Errors
//
// Load does not stop at the first problem: it reports every variable that is
// wrong, joined with errors.Join, one line each, and each line names the
// variable, shows the offending value (masked when secret) and says what is
// expected:
//
//	MYMONIT_INGEST_BATCH_SIZE="abc": not an integer
//	MYMONIT_INGEST_BATCH_SIZE=0: must be at least 1
//	MYMONIT_MYSQL_DSN is required (MySQL DSN)
//
// After the fields load, every struct in the tree that implements
// interface{ Validate() error } is checked, innermost first, for rules that
// span fields; its error joins the others. Validate is skipped for a struct
// when a field in it or in a struct nested in it failed to parse or broke a
// tag rule, so it only sees well-formed values; the Validate errors of
// independent structs are all reported. On error the destination may be
// partly filled and must not be used.
//
// # Showing configuration
//
// Fields, Describe and Print show the loaded values for the start-up log;
// Markdown renders the reference table. None of them reveal a secret: a
// secret field shows "***" when set and "" when not, and any value shaped
// like a URL or a MySQL DSN has its password replaced by "***" even when the
// field is not marked secret (defence in depth; query parameters named like
// password, secret or token are masked too).
package config
