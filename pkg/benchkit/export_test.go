package benchkit

// Unexported helpers, for the tests of package benchkit_test.
var (
	ExitStatus      = exitStatus
	ProfileName     = profileName
	ParseLoadAvg    = parseLoadAvg
	ParseCPU        = parseCPU
	BusyBetween     = busyBetween
	ParseProcessCPU = parseProcessCPU
)

// Counters returns the sums of a sample and whether it is known.
func (s CPUSample) Counters() (busy, total uint64, ok bool) { return s.busy, s.total, s.ok }
