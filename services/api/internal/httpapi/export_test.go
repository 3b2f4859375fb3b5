package httpapi

// RoutePatterns lists the registered route patterns.
func (s *Server) RoutePatterns() []string {
	out := make([]string, len(s.routes))
	for i, rt := range s.routes {
		out[i] = rt.pattern
	}
	return out
}
