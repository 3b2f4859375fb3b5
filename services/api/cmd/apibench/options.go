package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/mymonit/mymonit/pkg/benchkit"
	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/pkg/testenv"
)

// Loaders of the measures.
const (
	loaderInfile = "infile"
	loaderInsert = "insert"
)

// options are the command-line settings of one run.
type options struct {
	mysqlDSN string // server DSN, no database selected

	measures int
	sensors  int

	rounds     int
	queries    int
	points     int // 0: min(storage.MaxReadLimit, points per sensor)
	exportRows int // 0: every row
	clients    int
	duration   time.Duration

	loader    string
	loadConns int
	keep      bool
	keepDB    string

	cpuProf string
	json    bool
}

// perSensor is the number of points of each sensor.
func (o *options) perSensor() int { return o.measures / o.sensors }

// rangePoints is the number of points of a range query.
func (o *options) rangePoints() int {
	if o.points > 0 {
		return o.points
	}
	return min(storage.MaxReadLimit, o.perSensor())
}

// exportSteps is the number of times (one point of every sensor each) of
// the CSV export's window; the export holds exportSteps × sensors rows.
func (o *options) exportSteps() int {
	if o.exportRows <= 0 {
		return o.perSensor()
	}
	return min(o.perSensor(), (o.exportRows+o.sensors-1)/o.sensors)
}

var dbNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

func parseOptions(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("apibench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.mysqlDSN, "mysql-dsn", testenv.MySQLServerDSN(), "MySQL/MariaDB server DSN, no database selected (default from MYMONIT_TEST_MYSQL_DSN)")
	fs.IntVar(&o.measures, "measures", 10_000_000, "measures in the database, spread evenly over the sensors")
	fs.IntVar(&o.sensors, "sensors", 1000, "sensors (series) of the benchmark experiment; must divide -measures")
	fs.IntVar(&o.rounds, "rounds", 5, "rounds of the three phases (range, export, concurrent)")
	fs.IntVar(&o.queries, "queries", 120, "range queries per variant (API, store, direct SQL) and round")
	fs.IntVar(&o.points, "points", 0, "points of a range query (0: 10000, or all the points of a sensor when it has fewer)")
	fs.IntVar(&o.exportRows, "export-rows", 2_000_000, "rows of the CSV export, a time window over every sensor, rounded up to a multiple of -sensors (0: every row)")
	fs.IntVar(&o.clients, "clients", 32, "concurrent clients of the concurrent phase")
	fs.DurationVar(&o.duration, "duration", 3*time.Second, "how long each variant of the concurrent phase runs per round")
	fs.StringVar(&o.loader, "loader", loaderInfile, "how the measures are loaded: infile (LOAD DATA LOCAL INFILE from a reader) or insert (multi-row INSERTs)")
	fs.IntVar(&o.loadConns, "load-conns", 1, "connections loading the measures in parallel (more than one is slower: they insert into the middle of each other's key range)")
	fs.BoolVar(&o.keep, "keep", false, "use the database -keep-db and keep it: reused without loading when it holds the expected rows")
	fs.StringVar(&o.keepDB, "keep-db", "mymonit_apibench", "database name of -keep")
	fs.StringVar(&o.cpuProf, "cpuprofile", "", "write a CPU profile of each phase of the last round to this file name with the phase before the extension (cpu.prof: cpu.range.prof, cpu.export.prof, cpu.concurrent.prof)")
	fs.BoolVar(&o.json, "json", false, "print the figures as JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return o, o.validate()
}

func (o *options) validate() error {
	// errors.Join drops the nils of the minimums that hold.
	errs := []error{
		benchkit.AtLeast("-measures", o.measures, 1),
		benchkit.AtLeast("-sensors", o.sensors, 8),
		benchkit.AtLeast("-rounds", o.rounds, 1),
		benchkit.AtLeast("-queries", o.queries, 1),
		benchkit.AtLeast("-points", o.points, 0),
		benchkit.AtLeast("-export-rows", o.exportRows, 0),
		benchkit.AtLeast("-clients", o.clients, 1),
		benchkit.AtLeast("-load-conns", o.loadConns, 1),
	}
	if o.sensors > 0 && o.measures%o.sensors != 0 {
		errs = append(errs, fmt.Errorf("-measures (%d) must be a multiple of -sensors (%d): every sensor holds the same points", o.measures, o.sensors))
	}
	if o.sensors > 0 && o.points > min(storage.MaxReadLimit, o.perSensor()) {
		errs = append(errs, fmt.Errorf("-points is %d, at most %d (the API's largest page and the points of one sensor, -measures/-sensors)",
			o.points, min(storage.MaxReadLimit, o.perSensor())))
	}
	if o.duration < 100*time.Millisecond {
		errs = append(errs, errors.New("-duration must be at least 100ms"))
	}
	if o.loader != loaderInfile && o.loader != loaderInsert {
		errs = append(errs, fmt.Errorf("-loader is %q, want %s or %s", o.loader, loaderInfile, loaderInsert))
	}
	if !dbNamePattern.MatchString(o.keepDB) {
		errs = append(errs, fmt.Errorf("-keep-db is %q, want a lower-case name of letters, digits and _", o.keepDB))
	}
	return errors.Join(errs...)
}
