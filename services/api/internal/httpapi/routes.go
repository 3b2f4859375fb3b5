package httpapi

import (
	"net/http"

	"github.com/mymonit/mymonit/pkg/storage"
)

var (
	adminOnly = []storage.Role{storage.RoleAdmin}
	anyRole   = []storage.Role(nil)
)

// routeTable lists every /v1 route; the OpenAPI test checks it against
// openapi.yaml both ways.
func (s *Server) routeTable() []route {
	return []route{
		{pattern: "GET /v1/openapi.json", public: true, h: s.openAPI},
		{pattern: "GET /v1/me", roles: anyRole, h: s.me},

		{pattern: "POST /v1/users", roles: adminOnly, action: "user.create", h: s.createUser},
		{pattern: "GET /v1/users", roles: adminOnly, h: s.listUsers},
		{pattern: "GET /v1/users/{id}", roles: adminOnly, h: s.getUser},
		{pattern: "PATCH /v1/users/{id}", roles: adminOnly, action: "user.update", h: s.updateUser},
		{pattern: "DELETE /v1/users/{id}", roles: adminOnly, action: "user.erase", h: s.eraseUser},
		{pattern: "GET /v1/users/{id}/experiments", roles: adminOnly, h: s.userExperiments},

		{pattern: "POST /v1/experiments", roles: adminOnly, action: "experiment.create", h: s.createExperiment},
		{pattern: "GET /v1/experiments", roles: anyRole, h: s.listExperiments},
		{pattern: "GET /v1/experiments/{id}", roles: anyRole, h: s.getExperiment},
		{pattern: "PATCH /v1/experiments/{id}", roles: adminOnly, action: "experiment.update", h: s.updateExperiment},
		{pattern: "DELETE /v1/experiments/{id}", roles: adminOnly, action: "experiment.delete", h: s.deleteExperiment},

		{pattern: "GET /v1/experiments/{id}/members", roles: adminOnly, h: s.listMembers},
		{pattern: "PUT /v1/experiments/{id}/members/{userID}", roles: adminOnly, action: "membership.add", h: s.addMember},
		{pattern: "DELETE /v1/experiments/{id}/members/{userID}", roles: adminOnly, action: "membership.remove", h: s.removeMember},

		// Data reads are audit events too (measures.go).
		{pattern: "GET /v1/experiments/{id}/measures", roles: anyRole, action: "measures.read", h: s.listMeasures},
		{pattern: "GET /v1/experiments/{id}/sensors", roles: anyRole, action: "sensors.read", h: s.listSensors},

		{pattern: "GET /v1/experiments/{id}/measures/live", roles: anyRole, action: "measures.live", h: s.liveMeasures},
	}
}

func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(s.spec)
	return nil
}
