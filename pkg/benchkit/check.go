package benchkit

// Check is one goal of a benchmark, evaluated.
type Check struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Target string  `json:"target"` // as printed: ">= 0.90"
	Pass   bool    `json:"pass"`
}

// Checks are the goals of a run, in the order evaluated.
type Checks []Check

// Add appends the check name of value v against target.
func (cs *Checks) Add(name string, v float64, target string, pass bool) {
	*cs = append(*cs, Check{Name: name, Value: v, Target: target, Pass: pass})
}

// Get returns the check name, and false when it was not evaluated.
func (cs Checks) Get(name string) (Check, bool) {
	for _, c := range cs {
		if c.Name == name {
			return c, true
		}
	}
	return Check{}, false
}

// Verdict is PASS or MISS for the check name, "" when it was not
// evaluated.
func (cs Checks) Verdict(name string) string {
	c, ok := cs.Get(name)
	switch {
	case !ok:
		return ""
	case c.Pass:
		return "PASS"
	default:
		return "MISS"
	}
}
